"""Engines and sessions, and migrating a database to the current schema with Alembic."""

from __future__ import annotations

from functools import cache
from importlib import resources
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.orm import Session, sessionmaker


@cache
def engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        created = create_engine(url, connect_args={"timeout": 30})

        @event.listens_for(created, "connect")
        def _pragmas(connection, _record):  # type: ignore[no-untyped-def]
            cursor = connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")  # readers and one writer at a time, across processes
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.close()

        return created
    return create_engine(url, pool_pre_ping=True, pool_size=5, max_overflow=5)


def sessions(url: str) -> sessionmaker[Session]:
    return sessionmaker(engine(url), expire_on_commit=False)


def migrate(url: str) -> None:
    """Bring the database to the newest revision (idempotent)."""
    config = Config()
    config.set_main_option("script_location", str(resources.files("flowbuilder.runtime.db") / "migrations"))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    with engine(url).begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "head")
