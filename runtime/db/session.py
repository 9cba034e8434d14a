"""Engines and sessions, and migrating a database to the current schema with Alembic."""

from __future__ import annotations

import hashlib
import logging
import time
from datetime import datetime
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event, func, inspect, select, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session, sessionmaker

from ..secrets import DatabaseCredentials
from .models import now

# The newest migration. A once-mode task starts for every message: when the database is already here it
# skips importing Alembic (a quarter of a second). A test keeps this equal to Alembic's own head.
HEAD_REVISION = "0002"

log = logging.getLogger("flowbuilder.db")


@cache
def credentials(secret_arn: str) -> DatabaseCredentials:
    """One cache per secret and process, shared by every engine that connects with it."""
    return DatabaseCredentials(secret_arn)


def authentication_failed(exc: Exception) -> bool:
    """The server refused the user name or password (not: unreachable, too many connections). libpq gives no
    SQLSTATE for a failed connection, so the server's message decides; RDS answers in English."""
    return getattr(exc, "sqlstate", None) in ("28P01", "28000") or "authentication failed" in str(exc)


def missing_table(exc: DBAPIError) -> bool:
    """The schema is not there (a database re-created or restored behind a warm process): PostgreSQL's
    undefined_table, SQLite's "no such table"."""
    return getattr(exc.orig, "sqlstate", None) == "42P01" or "no such table" in str(exc.orig)


def wal(cursor: Any, deadline_s: float = 30.0) -> None:
    """Put the SQLite file in WAL mode (readers and one writer at a time, across processes). Switching a new
    file to WAL needs an exclusive lock, and while another connection is itself switching SQLite refuses at
    once, without its busy timeout: when several processes open a fresh file at once (`fbc up` starting its
    roles), some are refused with "database is locked". WAL is a property of the file, so whoever is refused
    retries until it sees it set. Each attempt may still wait the busy timeout on an ordinary lock, so a file
    held locked by another process fails after up to deadline_s plus that timeout."""
    import sqlite3  # only SQLite users pay for it

    deadline = time.monotonic() + deadline_s
    delay = 0.005
    while True:
        try:
            if cursor.execute("PRAGMA journal_mode").fetchone()[0] == "wal":
                return
            cursor.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() + delay > deadline:
                raise
            time.sleep(delay)
            delay = min(delay * 2, 0.2)


def engine(url: str, secret_arn: str = "") -> Engine:
    """The process's engine for `url` (one per url and secret, however the call is spelled: functools.cache
    keys engine(url) and engine(url, "") apart, which made two pools for one database)."""
    return _engine(url, secret_arn)


@cache
def _engine(url: str, secret_arn: str) -> Engine:
    """The process's engine for `url`. With `secret_arn` (RDS, whose password rotates every 7 days) the URL
    carries no credentials: each new connection takes them from the secret, cached in-process and read again
    once when the server refuses them, so a rotation costs one failed connection attempt and no restart."""
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        created = create_engine(url, connect_args={"timeout": 30})

        @event.listens_for(created, "connect")
        def _pragmas(connection, _record):  # type: ignore[no-untyped-def]
            cursor = connection.cursor()
            wal(cursor)
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.close()

        return created
    # use_native_hstore=False: psycopg's hstore lookup costs every new connection three round trips (SAVEPOINT,
    # SELECT from pg_type, RELEASE) for a type no table uses.
    created = create_engine(url, pool_pre_ping=True, pool_size=5, max_overflow=5, use_native_hstore=False)
    if secret_arn:
        secret = credentials(secret_arn)

        @event.listens_for(created, "do_connect")
        def _connect(dialect: Any, _record: Any, cargs: Any, cparams: dict[str, Any]) -> Any:
            user, password = secret.get()
            try:
                return dialect.connect(*cargs, **{**cparams, "user": user, "password": password})
            except dialect.loaded_dbapi.OperationalError as exc:
                if not authentication_failed(exc):
                    raise
                log.info("the database refused the cached credentials; reading %s again", secret_arn)
                user, password = secret.refresh(rejected=(user, password))
                return dialect.connect(*cargs, **{**cparams, "user": user, "password": password})

    return created


def clock(session: Session) -> datetime:
    """The database's time, for every comparison of leases and send times: hosts' clocks differ (a worker whose
    clock is 90 s slow would see a live lease as expired), the database's is one. PostgreSQL:
    statement_timestamp(), not now(): now() is the transaction's start, which is before any wait for a lock
    inside it (a claim waiting 3 s on the running limit's advisory lock wrote a lease 3 s short and counted
    leases expired during the wait as live). SQLite is a file on one host, whose clock is the only one."""
    if session.get_bind().dialect.name == "postgresql":
        moment: datetime | None = session.scalar(select(func.statement_timestamp()))
        assert moment is not None
        return moment
    return now()


def database_now(session: Session) -> Any:
    """clock() for a write that only compares and stores it: on PostgreSQL the statement's own timestamp inside
    the statement (no round trip of its own: three of a one-step execution's ~18); elsewhere clock()'s value."""
    if session.get_bind().dialect.name == "postgresql":
        return func.statement_timestamp()
    return clock(session)


def sessions(url: str, secret_arn: str = "") -> sessionmaker[Session]:
    return sessionmaker(engine(url, secret_arn), expire_on_commit=False)


def current_revision(url: str, secret_arn: str = "") -> str | None:
    """One round trip: in autocommit, the SELECT is not wrapped in BEGIN and ROLLBACK (a once-mode task and a
    cold Lambda ask this before their first request)."""
    try:
        with engine(url, secret_arn).connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            return connection.execute(text("SELECT version_num FROM alembic_version")).scalar()
    except DBAPIError:  # no table yet
        return None


# The PostgreSQL advisory lock that migrations take: a fixed 64-bit key from a fixed name, the same in every
# process and version.
MIGRATION_LOCK_KEY = int.from_bytes(hashlib.sha256(b"flowbuilder.runtime.db.migrate").digest()[:8], "big",
                                    signed=True)


def _revision_on(connection: Connection) -> str | None:
    """The revision as `connection` sees it, without an error when there is no table yet (an error would abort
    a PostgreSQL transaction)."""
    if not inspect(connection).has_table("alembic_version"):
        return None
    return connection.execute(text("SELECT version_num FROM alembic_version")).scalar()


def migrate(url: str, secret_arn: str = "") -> None:
    """Bring the database to the newest revision (idempotent, and safe when several processes start at once
    against a fresh database). At the head already: one query, no lock, no Alembic. Otherwise one process at a
    time, under a lock held until its migrations commit (PostgreSQL: a transaction-level advisory lock; SQLite:
    the database's write lock, BEGIN IMMEDIATE, waited for up to the engine's 30 s busy timeout), reads the
    revision again and upgrades only when still behind; the others then find the head and do nothing."""
    if current_revision(url, secret_arn) == HEAD_REVISION:
        return
    with engine(url, secret_arn).connect() as connection:
        if connection.dialect.name == "sqlite":
            # pysqlite (legacy transaction control) opens no transaction itself before this statement and none
            # after it while one is open; DDL does not commit it. So Alembic's DDL runs inside it.
            connection.exec_driver_sql("BEGIN IMMEDIATE")
        elif connection.dialect.name == "postgresql":
            connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK_KEY})
        try:
            if _revision_on(connection) != HEAD_REVISION:
                _upgrade(connection, url)
        except BaseException:
            connection.rollback()
            raise
        connection.commit()  # and so the lock is released


def _upgrade(connection: Connection, url: str) -> None:
    """Alembic's upgrade to the head, in the transaction `connection` is in (Alembic leaves it to us)."""
    from alembic import command
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(resources.files("flowbuilder.runtime.db") / "migrations"))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    config.attributes["connection"] = connection
    command.upgrade(config, "head")
