"""Recording and sending executions, shared by the API, the scheduler and the sweeper.

An execution is committed before its message is sent: a crash in between leaves it recorded but not
sent (enqueued_at is NULL), which the sweeper finds and sends. The reverse order could send an ID that
no row backs.
"""

from __future__ import annotations

import os
from datetime import timedelta
from typing import Any

from sqlalchemy import and_, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from .db.models import QUEUED, RUNNING, Execution, Workflow, now
from .queue import Queue

UNSENT_GRACE = timedelta(seconds=60)  # leave the API time to send before the sweeper does


def queued_after() -> timedelta:
    """A queued execution sent this long ago with no worker claiming it is sent again: in ultra, Pipes
    deleted its message when the task started, and a task that died before claiming (Spot reclaimed at
    start, a crash on start-up) would otherwise leave it queued forever. A duplicate message is harmless."""
    return timedelta(seconds=int(os.environ.get("FLOWBUILDER_SWEEP_QUEUED_AFTER", "900")))


def create(sessions: sessionmaker[Session], workflow: Workflow, data: dict[str, Any],
           idempotency_key: str | None) -> tuple[Execution, bool]:
    """(execution, created): an existing execution with the same key is returned, not duplicated."""
    if idempotency_key:
        with sessions() as session:
            existing = session.scalar(select(Execution).where(Execution.idempotency_key == idempotency_key))
            if existing is not None:
                return existing, False
    execution = Execution(workflow_id=workflow.id, workflow_version=workflow.version,
                          definition=workflow.definition, state=QUEUED, input=data, attempts=0,
                          idempotency_key=idempotency_key)
    try:
        with sessions.begin() as session:
            session.add(execution)
    except IntegrityError:  # the same key, committed by a concurrent request
        with sessions() as session:
            found = session.scalar(select(Execution).where(Execution.idempotency_key == idempotency_key))
            assert found is not None
            return found, False
    return execution, True


def send(sessions: sessionmaker[Session], queue: Queue, execution_id: str) -> None:
    queue.send(execution_id)
    with sessions.begin() as session:
        session.execute(update(Execution).where(Execution.id == execution_id).values(enqueued_at=now())
                        .execution_options(synchronize_session=False))


def sweep(sessions: sessionmaker[Session], queue: Queue, limit: int = 500) -> list[str]:
    """Send again what would otherwise be lost: running executions whose lease expired (their worker died
    or its Spot task was reclaimed after Pipes had deleted the message), executions never sent, and queued
    executions no worker claimed (see queued_after)."""
    moment = now()
    with sessions() as session:
        ids = list(session.scalars(select(Execution.id).where(or_(
            and_(Execution.state == RUNNING, Execution.lease_expires_at < moment),
            and_(Execution.state == QUEUED, Execution.enqueued_at.is_(None),
                 Execution.created_at < moment - UNSENT_GRACE),
            and_(Execution.state == QUEUED, Execution.enqueued_at < moment - queued_after()),
        )).order_by(Execution.created_at).limit(limit)))
    for execution_id in ids:
        send(sessions, queue, execution_id)
    return ids


def recover(sessions: sessionmaker[Session], queue: Queue) -> list[str]:
    """Send every unfinished execution again, releasing leases first. Only for a queue that has just been
    created empty while no worker runs against this database (`fbc up` at start: its local queue does not
    outlive it); elsewhere the sweeper's rules apply."""
    with sessions.begin() as session:
        session.execute(update(Execution).where(Execution.state == RUNNING)
                        .values(state=QUEUED, lease_owner=None, lease_expires_at=None, updated_at=now())
                        .execution_options(synchronize_session=False))
    with sessions() as session:
        ids = list(session.scalars(select(Execution.id).where(Execution.state == QUEUED)
                                   .order_by(Execution.created_at)))
    for execution_id in ids:
        send(sessions, queue, execution_id)
    return ids
