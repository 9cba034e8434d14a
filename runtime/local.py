"""The runtime's public API for a host that runs it on one machine (`fbc up`): all the compiler may import.

Everything else under runtime/ is internal; the roles themselves run as processes (compiler/contract.py
COMMANDS), so this is only what a host does before starting them.
"""

from __future__ import annotations

from typing import Any

from . import config, executions
from .db.session import migrate, sessions
from .queue import Queue


def database_url(url: str) -> str:
    """A database URL as the runtime will use it (postgres:// becomes SQLAlchemy's psycopg 3 dialect)."""
    return config.database_url({"FLOWBUILDER_DATABASE_URL": url})


def prepare(url: str) -> None:
    """Migrate the database to the runtime's schema (safe when several processes start at once)."""
    migrate(url)


def recover(url: str, queue_url: str, sqs: Any) -> int:
    """Send every unfinished execution again to a queue just created empty, with no worker running yet;
    how many were sent (executions.recover says why only then)."""
    return len(executions.recover(sessions(url), Queue(queue_url, sqs)))
