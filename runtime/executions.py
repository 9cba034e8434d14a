"""Recording and sending executions, shared by the API, the scheduler and the sweeper.

An execution is committed before its message is sent: a crash in between leaves it recorded but not
sent, which the sweeper finds and sends. The reverse order could send an ID that no row backs.

One message per execution per enqueue: a duplicate is harmless to correctness (the claim is a conditional
UPDATE) but each one costs a receive, so the first send (`enqueue`) and the sweeper's re-sends (`sweep`)
mark enqueued_at in a conditional UPDATE before sending, and only the caller that changed the row sends.

Send times are the database's clock (db.session.clock), the one the sweeper compares them with. On PostgreSQL
it is statement_timestamp() inside the statement that writes or compares it (what clock() would read, without
a round trip of its own); the value written comes back with RETURNING when it is needed again.
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, case, func, or_, select, union, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from .config import Settings
from .db.models import QUEUED, RUNNING, Execution, Workflow, now
from .db.session import database_now
from .queue import Queue

UNSENT_GRACE = timedelta(seconds=60)  # leave the API time to send before the sweeper does
# once mode: from a send to the claim by the task the Pipe starts for it. Pipes reads the message within
# seconds; Fargate then provisions the task, pulls the image and starts it, about 1-2 minutes, and the task
# claims within a second of starting.
TASK_START_UP = timedelta(seconds=120)


def queued_after(settings: Settings | None = None) -> timedelta:
    """How long a sent execution may stay queued, unclaimed, before the sweeper sends it again: the longest a
    live worker can take to claim a message that exists, so that past it the message is taken to be lost (a
    crash between marking it sent and sending it; in ultra, Pipes deleted it when the task started and the
    task died before claiming, or RunTask kept failing until it reached the dead-letter queue).

    - poll: the longest wait, with a worker free, follows a receive that ended without a claim (the receiving
      worker died, its thread raised, the database refused): the message stays hidden for the visibility
      timeout, then a poll receives it within one poll wait. FLOWBUILDER_VISIBILITY_SECONDS +
      FLOWBUILDER_POLL_WAIT, 110 s by default, from the same Settings the workers read.
    - once: the task's start-up, TASK_START_UP (120 s). Not the worker timeout: a claimed execution is running,
      never queued, and its lease is what brings it back.

    FLOWBUILDER_SWEEP_QUEUED_AFTER, when set, is used instead. A backlog (every poll worker busy) outlasts the
    bound: its executions get a duplicate message per sweep, which a worker deletes when it finds the execution
    busy or finished; in once mode with a running limit the sweeper sends no more of them than there are free
    slots (see sweep). The sweeper runs every compiler/contract.py SWEEP_MINUTES, so a lost message is sent
    again within this bound plus that."""
    settings = settings or Settings.from_env()
    if settings.sweep_queued_after is not None:
        return timedelta(seconds=settings.sweep_queued_after)
    if settings.worker_mode == "once":
        return TASK_START_UP
    return timedelta(seconds=settings.visibility_seconds + settings.poll_wait)


def _running_limit(settings: Settings) -> int:
    """once mode's bound on executions running at once (FLOWBUILDER_WORKER_MAX_RUNNING), 0 for none."""
    return settings.worker_max_running if settings.worker_mode == "once" else 0


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
    """Send unconditionally (a released execution, `recover`): the caller knows a new message is due."""
    queue.send(execution_id)
    with sessions.begin() as session:
        session.execute(update(Execution).where(Execution.id == execution_id)
                        .values(enqueued_at=database_now(session))
                        .execution_options(synchronize_session=False))


def enqueue(sessions: sessionmaker[Session], queue: Queue, execution_id: str) -> bool:
    """Send a recorded execution's first message, once: concurrent callers (POSTs with one Idempotency-Key,
    a schedule invoked twice) race on one conditional UPDATE of enqueued_at and only the winner sends. True
    when this call sent it. A failed send puts enqueued_at back to NULL (the next POST with the key, or the
    sweeper, sends it) and raises; a crash between the UPDATE and the send leaves it queued with enqueued_at
    set, which the sweeper sends after FLOWBUILDER_SWEEP_QUEUED_AFTER."""
    with sessions.begin() as session:
        moment = session.scalar(update(Execution)
                                .where(Execution.id == execution_id, Execution.state == QUEUED,
                                       Execution.enqueued_at.is_(None))
                                .values(enqueued_at=database_now(session)).returning(Execution.enqueued_at)
                                .execution_options(synchronize_session=False))
        if moment is None:  # another caller won, or it is no longer queued
            return False
    try:
        queue.send(execution_id)
    except Exception:
        _unsent(sessions, [execution_id], moment)
        raise
    return True


def _unsent(sessions: sessionmaker[Session], ids: list[str], moment: datetime) -> None:
    """Undo `enqueued_at = moment` for messages that did not leave (unless something re-sent them since)."""
    with sessions.begin() as session:
        session.execute(update(Execution).where(Execution.id.in_(ids), Execution.enqueued_at == moment)
                        .values(enqueued_at=None).execution_options(synchronize_session=False))


def sweep(sessions: sessionmaker[Session], queue: Queue, limit: int = 500,
          settings: Settings | None = None) -> list[str]:
    """Send again what would otherwise be lost: running executions whose lease expired (their worker died
    or its Spot task was reclaimed after Pipes had deleted the message), executions never sent (UNSENT_GRACE
    after they were recorded), and queued executions sent but not claimed (queued_after).

    One UPDATE picks them and marks them sent (enqueued_at), an expired lease turned back to queued with no
    lease in the same statement: a second sweep (or a concurrent one) finds nothing to send until the next
    rule applies, so each execution gets one message per sweep that enqueues it. The messages leave after
    the commit; one that fails to leave is marked unsent again, for the next sweep.

    Expired leases and unsent executions are picked first (up to `limit`), then the unclaimed ones (up to
    `limit` more), oldest first: a backlog of unclaimed executions never holds back the others. In once mode
    with a running limit, unclaimed ones are sent only into free slots (the limit less the live leases): at the
    limit a task started for one would be refused, and each live holder claims the oldest queued execution
    when it is done (engine.claim_next), so nothing waits for a message that a holder will not take."""
    settings = settings or Settings.from_env()
    with sessions.begin() as session:
        moment = database_now(session)
        expired = and_(Execution.state == RUNNING, Execution.lease_expires_at < moment)
        unsent = and_(Execution.state == QUEUED, Execution.enqueued_at.is_(None),
                      Execution.created_at < moment - UNSENT_GRACE)
        cutoff = moment - queued_after(settings)
        unclaimed = and_(Execution.state == QUEUED, Execution.enqueued_at < cutoff)
        lost = select(Execution.id).where(or_(expired, unsent)).order_by(Execution.created_at).limit(limit)
        arms = [select(lost.subquery().c.id)]
        room = _room(session, moment, limit, _running_limit(settings))
        if room > 0:
            waiting = select(Execution.id).where(unclaimed).order_by(Execution.created_at).limit(room)
            arms.append(select(waiting.subquery().c.id))
        picked = union(*arms) if len(arms) > 1 else arms[0]
        rows = session.execute(
            update(Execution).where(Execution.id.in_(picked), or_(expired, unsent, unclaimed))
            .values(state=QUEUED, lease_owner=None, lease_expires_at=None, enqueued_at=moment,
                    updated_at=case((Execution.state == RUNNING, moment), else_=Execution.updated_at))
            .returning(Execution.id, Execution.enqueued_at).execution_options(synchronize_session=False)).all()
    ids = [str(row.id) for row in rows]
    for position, execution_id in enumerate(ids):
        try:
            queue.send(execution_id)
        except Exception:
            _unsent(sessions, ids[position:], rows[0].enqueued_at)  # one statement: one moment for all
            raise
    return ids


def _room(session: Session, moment: Any, limit: int, bound: int) -> int:
    """How many unclaimed executions one sweep may send: `limit`, or in once mode with a running limit the free
    slots (counted as engine.claim_bounded counts them: running with a live lease)."""
    if bound <= 0:
        return limit
    live = session.scalar(select(func.count()).select_from(Execution)
                          .where(Execution.state == RUNNING, Execution.lease_expires_at > moment)) or 0
    return max(0, min(limit, bound - live))


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
