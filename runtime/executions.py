"""Recording and sending executions, shared by the API, the scheduler and the sweeper.

An execution is committed before its message is sent: a crash in between leaves it recorded but not
sent (enqueued_at is NULL), which the sweeper finds and sends. The reverse order could send an ID that
no row backs.
"""

from __future__ import annotations

import hashlib
import json
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


class KeyReused(ValueError):
    """An Idempotency-Key already used with a different request."""


def request_hash(data: Any) -> str:
    """SHA-256 of the canonical JSON of a request's input: equal inputs, equal hashes, whatever the key order."""
    canonical = json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


def _same_request(existing: Execution, fingerprint: str | None) -> Execution:
    if fingerprint is not None and existing.request_hash is not None and existing.request_hash != fingerprint:
        raise KeyReused("this Idempotency-Key was already used with a different request body; "
                        "use a new key for a different request")
    return existing


def create(sessions: sessionmaker[Session], workflow: Workflow, data: dict[str, Any],
           idempotency_key: str | None) -> tuple[Execution, bool]:
    """(execution, created): an existing execution with the same key and the same input is returned, not
    duplicated; the same key with a different input raises KeyReused."""
    fingerprint = request_hash(data) if idempotency_key else None
    if idempotency_key:
        with sessions() as session:
            existing = session.scalar(select(Execution).where(Execution.idempotency_key == idempotency_key))
            if existing is not None:
                return _same_request(existing, fingerprint), False
    execution = Execution(workflow_id=workflow.id, workflow_version=workflow.version,
                          definition=workflow.definition, state=QUEUED, input=data, attempts=0,
                          idempotency_key=idempotency_key, request_hash=fingerprint)
    try:
        with sessions.begin() as session:
            session.add(execution)
    except IntegrityError:  # the same key, committed by a concurrent request
        with sessions() as session:
            found = session.scalar(select(Execution).where(Execution.idempotency_key == idempotency_key))
            if found is None:  # not the key: the workflow went away meanwhile
                raise
            return _same_request(found, fingerprint), False
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
