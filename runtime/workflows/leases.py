"""Leases on executions: claims, renewals, the fence every worker write passes, and the heartbeat.

A claim is a conditional UPDATE: one worker holds an execution's lease at a time; an expired lease (a killed
or stalled worker) can be taken over. Every time compared or stored here is the database's clock
(db.session.clock), never a host's: a worker whose clock is off can neither take a live lease nor keep an
expired one. Renew, release and finish (and the engine's step rows, through `held`) write only while
`lease_owner = me AND lease_expires_at > <the database's time>`: once another worker has claimed the execution,
the old holder writes nothing. On PostgreSQL the time is the statement's start (statement_timestamp(), not the
transaction's now(), which is before any lock wait inside it); a write that then waits for the row's lock (or
SQLite's write lock) can land shortly after the expiry; it still lands only if no claim came first, since a
claim takes the same lock and changes the owner.
"""

from __future__ import annotations

import logging
import threading
import time
import zlib
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from sqlalchemy import and_, func, or_, select, update
from sqlalchemy.orm import Session, sessionmaker

from ..db.models import FAILED, QUEUED, RUNNING, SUCCEEDED, Execution
from ..db.session import clock, database_now

Taken = Literal["busy", "finished", "missing"]  # why an execution cannot be claimed
Refusal = Literal[Taken, "deferred"]  # deferred: the running limit is reached

log = logging.getLogger("flowbuilder.engine")



def _claimable(owner: str, moment: Any) -> Any:
    free = or_(Execution.lease_owner.is_(None), Execution.lease_owner == owner, Execution.lease_expires_at < moment)
    return and_(Execution.state.in_([QUEUED, RUNNING]), free)


def _take(owner: str, moment: Any, lease_seconds: int) -> dict[str, Any]:
    return {"state": RUNNING, "lease_owner": owner, "lease_expires_at": moment + timedelta(seconds=lease_seconds),
            "attempts": Execution.attempts + 1, "updated_at": moment}


def _why_not(state: str | None) -> Taken:
    if state is None:
        return "missing"
    return "finished" if state in (SUCCEEDED, FAILED) else "busy"


def claim(sessions: sessionmaker[Session], execution_id: str, owner: str, lease_seconds: int) -> Taken | None:
    """Take the lease, or say why not: missing, finished (nothing to do) or busy (another live holder)."""
    with sessions.begin() as session:
        moment = database_now(session)
        result = session.execute(
            update(Execution).where(Execution.id == execution_id, _claimable(owner, moment))
            .values(**_take(owner, moment, lease_seconds)).execution_options(synchronize_session=False))
        if result.rowcount == 1:  # type: ignore[attr-defined]
            return None
        state = session.scalar(select(Execution.state).where(Execution.id == execution_id))
    return _why_not(state)


# Bounded claims (once mode, FLOWBUILDER_WORKER_MAX_RUNNING): Pipes starts one task per message with no
# concurrency limit, so the bound is kept here. Counting the live leases and taking one must be one step:
# PostgreSQL serializes it under a transaction-level advisory lock (each UPDATE's snapshot is taken after the
# lock, so it sees every claim committed before); SQLite runs the single UPDATE, count included, under the
# database's one write lock. Releasing a lease (finishing) needs no lock: it only lowers the count.
#
# Why nothing is stranded: a task is refused only while `limit` live leases exist, and its execution stays
# queued. Each holder of those leases is an admitted task that, when its execution ends, commits the end (its
# lease released) and then, under the same lock, claims the oldest queued execution (claim_next). Its release
# came after the refusal (the refusal counted the lease as live), so its look comes after the refusal too and
# sees the refused execution queued: it claims it, or another queued one, or finds the count back at the
# limit because a newly admitted task took the freed slot, and that task looks again when it ends. A queued
# execution is therefore left only if every lease holder died without looking; their leases expire and the
# sweeper sends it again (FLOWBUILDER_SWEEP_QUEUED_AFTER).
_ADMISSION_LOCK = zlib.crc32(b"flowbuilder.worker.admission")


def _serialize(session: Session) -> None:
    if session.get_bind().dialect.name == "postgresql":
        session.execute(select(func.pg_advisory_xact_lock(_ADMISSION_LOCK)))


def _live(moment: Any) -> Any:
    return (select(func.count()).select_from(Execution)
            .where(Execution.state == RUNNING, Execution.lease_expires_at > moment).scalar_subquery())


def claim_bounded(sessions: sessionmaker[Session], execution_id: str, owner: str, lease_seconds: int,
                  limit: int) -> Refusal | None:
    """claim(), but only while fewer than `limit` executions hold a live lease; "deferred" when the limit is
    reached, the execution left queued (an expired lease it had is cleared) for a running task to drain."""
    with sessions.begin() as session:
        _serialize(session)
        moment = clock(session)
        result = session.execute(
            update(Execution).where(Execution.id == execution_id, _claimable(owner, moment), _live(moment) < limit)
            .values(**_take(owner, moment, lease_seconds)).execution_options(synchronize_session=False))
        if result.rowcount == 1:  # type: ignore[attr-defined]
            return None
        found = session.execute(select(Execution.state, Execution.lease_owner, Execution.lease_expires_at)
                                .where(Execution.id == execution_id)).one_or_none()
        if found is None or found.state in (SUCCEEDED, FAILED):
            return _why_not(found.state if found else None)
        expires = found.lease_expires_at
        if found.lease_owner is not None and expires is not None and _aware(expires) >= moment:
            return "busy"
        if found.state == RUNNING:  # its holder died: queued again, so claim_next finds it
            session.execute(update(Execution).where(Execution.id == execution_id, Execution.state == RUNNING)
                            .values(state=QUEUED, lease_owner=None, lease_expires_at=None, updated_at=moment)
                            .execution_options(synchronize_session=False))
    return "deferred"


def claim_next(sessions: sessionmaker[Session], owner: str, lease_seconds: int, limit: int) -> str | None:
    """Claim the oldest queued execution while fewer than `limit` hold a live lease; its ID, or None when
    nothing is queued or the limit is reached."""
    with sessions.begin() as session:
        _serialize(session)
        moment = database_now(session)
        oldest = (select(Execution.id).where(Execution.state == QUEUED)
                  .order_by(Execution.created_at, Execution.id).limit(1).scalar_subquery())
        claimed = session.execute(
            update(Execution).where(Execution.id == oldest, Execution.state == QUEUED, _live(moment) < limit)
            .values(**_take(owner, moment, lease_seconds)).returning(Execution.id)
            .execution_options(synchronize_session=False)).scalar()
    return str(claimed) if claimed is not None else None


def _aware(moment: datetime) -> datetime:
    """SQLite hands back naive datetimes (stored in UTC)."""
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def held(session: Session, execution_id: str, owner: str, **values: Any) -> bool:
    """The fence: update the execution only while `owner` holds a live lease on it (by the database's clock);
    whether it did. On PostgreSQL the UPDATE also locks the row until the transaction ends, so a claim racing
    this write waits and then sees what it wrote (a renewed lease, or the outcome)."""
    moment = database_now(session)
    values = {key: (value(moment) if callable(value) else value) for key, value in values.items()}
    result = session.execute(
        update(Execution).where(Execution.id == execution_id, Execution.lease_owner == owner,
                                Execution.state == RUNNING, Execution.lease_expires_at > moment)
        .values(updated_at=moment, **values).execution_options(synchronize_session=False))
    return bool(result.rowcount == 1)  # type: ignore[attr-defined]


def extended(lease_seconds: int) -> Callable[[Any], Any]:
    """The lease's new expiry from the moment of the write (a datetime, or PostgreSQL's now())."""
    return lambda moment: moment + timedelta(seconds=lease_seconds)


def renew(sessions: sessionmaker[Session], execution_id: str, owner: str, lease_seconds: int) -> bool:
    """Extend a live lease; False when it is no longer ours or already expired (an expired lease is not renewed: once
    expired, another worker may have read the steps and be running the next one)."""
    with sessions.begin() as session:
        return held(session, execution_id, owner, lease_expires_at=extended(lease_seconds))


def release(sessions: sessionmaker[Session], execution_id: str, owner: str) -> bool:
    """Give the execution back (SIGTERM, Spot interruption): queued, no lease, finished steps kept. False when
    the lease was lost already (then whoever holds it, or the sweeper, carries on)."""
    with sessions.begin() as session:
        return held(session, execution_id, owner, state=QUEUED, lease_owner=None, lease_expires_at=None)


def finish(sessions: sessionmaker[Session], execution_id: str, owner: str, state: str, output: Any,
            error: str | None) -> bool:
    """Write the outcome, fenced; False (nothing written) when the lease was lost."""
    with sessions.begin() as session:
        return held(session, execution_id, owner, state=state, output=output, error=error, lease_owner=None,
                     lease_expires_at=None)


class Heartbeat(threading.Thread):
    """Renews the lease every third of it while a step runs, so only a dead or stalled worker's lease expires.
    A failed renew (a dropped connection) is retried every tenth of the lease; a lease's length after the start
    of the last renew that succeeded (monotonic clock, so a paused process counts the pause) the lease is
    declared lost. The database's expiry is at least that late, so the worker stops believing in its lease
    before the database stops honouring it; the fence in every write is the authority either way."""

    def __init__(self, sessions: sessionmaker[Session], execution_id: str, owner: str, lease: int,
                 claimed_at: float) -> None:
        super().__init__(daemon=True)
        self.args = (sessions, execution_id, owner, lease)
        self.renewed_at = claimed_at
        self.stopped = threading.Event()
        self._lost = threading.Event()

    @property
    def lost(self) -> bool:
        if not self._lost.is_set() and time.monotonic() - self.renewed_at >= self.args[3]:
            self._lost.set()  # seen by the step loop even while this thread was paused with the process
        return self._lost.is_set()

    def run(self) -> None:
        lease = self.args[3]
        wait = lease / 3
        while not self.stopped.wait(wait):
            attempt = time.monotonic()
            if self.lost:
                log.warning("execution %s: lease lost (not renewed for %d s)", self.args[1], lease)
                return
            try:
                renewed = renew(*self.args)
            except Exception:  # a database hiccup: try again soon, until the lease runs out
                log.warning("could not renew the lease of %s", self.args[1], exc_info=True)
                wait = max(0.1, lease / 10)
                continue
            if not renewed:
                log.warning("execution %s: lease lost (taken over or expired)", self.args[1])
                self._lost.set()
                return
            self.renewed_at, wait = attempt, lease / 3
