"""Tables: workflows, executions (a state machine with a lease), step runs (one per execution and step)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, DateTime, Dialect, ForeignKey, Integer, String, Text, TypeDecorator, UniqueConstraint
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

Json = JSON().with_variant(JSONB(), "postgresql")

QUEUED, RUNNING, SUCCEEDED, FAILED = "queued", "running", "succeeded", "failed"
STATES = (QUEUED, RUNNING, SUCCEEDED, FAILED)


def now() -> datetime:
    return datetime.now(UTC)


class Timestamp(TypeDecorator[datetime]):
    """A moment in UTC, aware in Python on every database. PostgreSQL stores timestamptz and hands back its
    session's zone; SQLite stores text without an offset (in UTC: everything written passes through here) and
    hands back a naive datetime, which the API would then return without an offset. Same column DDL as
    DateTime(timezone=True): no migration."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        return None if value is None else _utc(value)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        return None if value is None else _utc(value)


def _utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def new_id() -> str:
    return str(uuid.uuid4())


class Base(DeclarativeBase):
    pass


class Workflow(Base):
    __tablename__ = "workflows"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(String(128), unique=True)
    version: Mapped[int] = mapped_column(Integer, default=1)
    definition: Mapped[dict[str, Any]] = mapped_column(Json)
    created_at: Mapped[datetime] = mapped_column(Timestamp(), default=now)
    updated_at: Mapped[datetime] = mapped_column(Timestamp(), default=now, onupdate=now)

    # Optimistic versioning: every UPDATE is "... WHERE version = <the version read>" and sets the next one, so
    # of two concurrent edits of the same version one wins and the other fails (StaleDataError), none is lost.
    __mapper_args__ = {"version_id_col": version}  # noqa: RUF012 (SQLAlchemy's declarative attribute)


class Execution(Base):
    __tablename__ = "executions"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    workflow_id: Mapped[str] = mapped_column(ForeignKey("workflows.id", ondelete="CASCADE"), index=True)
    workflow_version: Mapped[int] = mapped_column(Integer)
    # The definition as it was when the execution started: edits never change a running execution.
    definition: Mapped[dict[str, Any]] = mapped_column(Json)
    state: Mapped[str] = mapped_column(String(16), default=QUEUED, index=True)
    input: Mapped[dict[str, Any]] = mapped_column(Json, default=dict)
    output: Mapped[Any] = mapped_column(Json, nullable=True)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    lease_owner: Mapped[str | None] = mapped_column(String(128), nullable=True)
    lease_expires_at: Mapped[datetime | None] = mapped_column(Timestamp(), nullable=True, index=True)
    # Unique: a retried POST or a re-delivered schedule creates nothing twice.
    idempotency_key: Mapped[str | None] = mapped_column(String(256), unique=True, nullable=True)
    # SHA-256 of the request the key was first used with: the same key with another body is refused.
    request_hash: Mapped[str | None] = mapped_column(String(64), nullable=True)
    enqueued_at: Mapped[datetime | None] = mapped_column(Timestamp(), nullable=True)
    created_at: Mapped[datetime] = mapped_column(Timestamp(), default=now)
    updated_at: Mapped[datetime] = mapped_column(Timestamp(), default=now, onupdate=now)


class StepRun(Base):
    __tablename__ = "step_runs"
    __table_args__ = (UniqueConstraint("execution_id", "step", name="uq_step_runs_execution_step"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    execution_id: Mapped[str] = mapped_column(ForeignKey("executions.id", ondelete="CASCADE"), index=True)
    step: Mapped[str] = mapped_column(String(128))
    position: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(16))  # succeeded | failed
    output: Mapped[Any] = mapped_column(Json, nullable=True)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    finished_at: Mapped[datetime] = mapped_column(Timestamp(), default=now)
