"""Engines and sessions, and migrating a database to the current schema with Alembic."""

from __future__ import annotations

from functools import cache
from importlib import resources
from pathlib import Path

from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session, sessionmaker

# The newest migration. A once-mode task starts for every message: when the database is already here it
# skips importing Alembic (a quarter of a second). A test keeps this equal to Alembic's own head.
HEAD_REVISION = "0001"


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


def current_revision(url: str) -> str | None:
    try:
        with engine(url).connect() as connection:
            return connection.execute(text("SELECT version_num FROM alembic_version")).scalar()
    except DBAPIError:  # no table yet
        return None


def migrate(url: str) -> None:
    """Bring the database to the newest revision (idempotent)."""
    if current_revision(url) == HEAD_REVISION:
        return
    from alembic import command
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(resources.files("flowbuilder.runtime.db") / "migrations"))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    with engine(url).begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "head")
