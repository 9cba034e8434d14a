"""Runs one execution, correct under at-least-once delivery.

- A claim is a conditional UPDATE: only one worker holds an execution's lease at a time; an expired lease
  (a killed or stalled worker) can be taken over. Lease times are the database's clock (db.session.clock),
  never a host's.
- Writes are fenced: a step row, an outcome and a release are each written in a transaction that first
  checks `lease_owner = me AND lease_expires_at > now()` and writes nothing otherwise ("lost"). So a worker
  that stalled past its lease (paused, a dropped connection, a long GC) and resumes cannot record a step or
  an outcome over the worker that took over; it stops before its next step. Its step in flight may still
  reach the far end: the Idempotency-Key makes the repeat harmless there.
- Each finished step is a row (unique per execution and step): a re-delivered execution resumes after its
  last finished step, and a step is never recorded twice.
- HTTP steps send an Idempotency-Key derived from execution and step, so a step interrupted after the
  request but before its row was written is safe to repeat at the far end.
- A failing step fails the execution with its error; it is not retried forever. Any exception while a step
  is evaluated or stored fails the step (recorded in its row and the execution's error), and an execution
  claimed more than Limits.max_attempts times fails instead of running again (a poison execution that kills
  its worker, or whose failure cannot be written, is re-sent after every lease expiry until then).
- A step's output is strict JSON (no NaN/Infinity, no NUL) of at most Limits.max_output_bytes, measured by an
  encoder that stops at the limit (transform.bounded_json), so the check costs at most that much work.
- The worker timeout bounds one claim of an execution: the step in flight gets at most the time left, no
  step starts after it, and the execution fails saying so.
- Once mode can bound how many executions run at once across tasks (claim_bounded, claim_next).
"""

from __future__ import annotations

import logging
import threading
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from pydantic import ValidationError
from sqlalchemy import and_, func, or_, select, update
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from ..db.models import FAILED, QUEUED, RUNNING, SUCCEEDED, Execution, StepRun
from ..db.session import clock
from . import http
from .definition import Definition, HttpStep
from .transform import DEFAULT_LIMIT, TransformError, bounded_json, evaluate, render

# lost: the lease went to another worker (or expired) while this one ran; it wrote nothing after that.
Outcome = Literal["succeeded", "failed", "released", "lost", "busy", "finished", "missing"]
Taken = Literal["busy", "finished", "missing"]  # why an execution cannot be claimed
Refusal = Literal[Taken, "deferred"]  # deferred: the running limit is reached

log = logging.getLogger("flowbuilder.engine")


@dataclass(frozen=True)
class Limits:
    lease_seconds: int = 60
    allowlist: tuple[http.Network, ...] = ()
    timeout: float = 0  # seconds one claim may run (the spec's worker timeout); 0: unbounded
    max_attempts: int = 10  # claims of one execution; past it, it fails (0: unbounded)
    max_output_bytes: int = DEFAULT_LIMIT  # a step's output (and an HTTP step's request and response body)


def _claimable(owner: str, moment: datetime) -> Any:
    free = or_(Execution.lease_owner.is_(None), Execution.lease_owner == owner, Execution.lease_expires_at < moment)
    return and_(Execution.state.in_([QUEUED, RUNNING]), free)


def _take(owner: str, moment: datetime, lease_seconds: int) -> dict[str, Any]:
    return {"state": RUNNING, "lease_owner": owner, "lease_expires_at": moment + timedelta(seconds=lease_seconds),
            "attempts": Execution.attempts + 1, "updated_at": moment}


def _why_not(state: str | None) -> Taken:
    if state is None:
        return "missing"
    return "finished" if state in (SUCCEEDED, FAILED) else "busy"


def claim(sessions: sessionmaker[Session], execution_id: str, owner: str, lease_seconds: int) -> Outcome | None:
    """Take the lease, or say why not: missing, finished (nothing to do) or busy (another live holder)."""
    with sessions.begin() as session:
        moment = clock(session)
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


def _live(moment: datetime) -> Any:
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
        moment = clock(session)
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


def _held(session: Session, execution_id: str, owner: str, **values: Any) -> bool:
    """The fence: update the execution only while `owner` holds a live lease on it (by the database's clock);
    whether it did. On PostgreSQL the UPDATE also locks the row until the transaction ends, so a claim racing
    this write waits and then sees what it wrote (a renewed lease, or the outcome)."""
    moment = clock(session)
    values = {key: (value(moment) if callable(value) else value) for key, value in values.items()}
    result = session.execute(
        update(Execution).where(Execution.id == execution_id, Execution.lease_owner == owner,
                                Execution.state == RUNNING, Execution.lease_expires_at > moment)
        .values(updated_at=moment, **values).execution_options(synchronize_session=False))
    return bool(result.rowcount == 1)  # type: ignore[attr-defined]


def _extended(lease_seconds: int) -> Callable[[datetime], datetime]:
    return lambda moment: moment + timedelta(seconds=lease_seconds)


def renew(sessions: sessionmaker[Session], execution_id: str, owner: str, lease_seconds: int) -> bool:
    """Extend a live lease; False when it is no longer ours or already expired (a lease is never revived: once
    expired, another worker may have read the steps and be running the next one)."""
    with sessions.begin() as session:
        return _held(session, execution_id, owner, lease_expires_at=_extended(lease_seconds))


def release(sessions: sessionmaker[Session], execution_id: str, owner: str) -> bool:
    """Give the execution back (SIGTERM, Spot interruption): queued, no lease, finished steps kept. False when
    the lease was lost already (then whoever holds it, or the sweeper, carries on)."""
    with sessions.begin() as session:
        return _held(session, execution_id, owner, state=QUEUED, lease_owner=None, lease_expires_at=None)


def _finish(sessions: sessionmaker[Session], execution_id: str, owner: str, state: str, output: Any,
            error: str | None) -> bool:
    """Write the outcome, fenced; False (nothing written) when the lease was lost."""
    with sessions.begin() as session:
        return _held(session, execution_id, owner, state=state, output=output, error=error, lease_owner=None,
                     lease_expires_at=None)


def _describe(exc: BaseException) -> str:
    """An exception as an error text that can be stored: the driver's message (not SQLAlchemy's, which
    repeats the statement and its parameters), without NUL or unpaired surrogates, at most 1,000 characters."""
    if isinstance(exc, RecursionError):
        text = "nested too deeply"
    else:
        text = f"{type(exc).__name__}: {exc.orig if isinstance(exc, DBAPIError) else exc}"
    return text.replace("\x00", "\\u0000").encode("utf-8", "backslashreplace").decode("utf-8")[:1000]


@dataclass(frozen=True)
class _Stored:
    """A step's row as the database has it."""
    status: str
    output: Any
    error: str | None


def _record(sessions: sessionmaker[Session], execution_id: str, owner: str, lease_seconds: int, name: str,
            position: int, status: str, output: Any, error: str | None) -> _Stored | None:
    """Record a finished step while holding the lease (extending it: a write is a heartbeat too). The row as
    stored, or None when the lease was lost (nothing written). If the step has a row already, that row wins
    and is returned: its output is what later steps and the execution's output read."""
    try:
        with sessions.begin() as session:
            if not _held(session, execution_id, owner, lease_expires_at=_extended(lease_seconds)):
                return None
            session.add(StepRun(execution_id=execution_id, step=name, position=position, status=status,
                                output=output, error=error, attempts=1))
    except IntegrityError:
        with sessions() as session:
            row = session.scalar(select(StepRun).where(StepRun.execution_id == execution_id, StepRun.step == name))
        if row is None:  # not the step's row: the execution itself went away
            raise
        log.warning("execution %s: step %s was already recorded; keeping the stored %s", execution_id, name,
                    row.status)
        return _Stored(row.status, row.output, row.error)
    return _Stored(status, output, error)


def _describe_step(name: str, exc: Exception) -> str:
    return f"step {name}: " + str(exc).replace("\x00", "\\u0000").encode("utf-8", "backslashreplace").decode()[:1000]


class _Heartbeat(threading.Thread):
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


def run(sessions: sessionmaker[Session], execution_id: str, owner: str, limits: Limits,
        should_stop: Callable[[], bool] = lambda: False) -> Outcome:
    claimed_at = time.monotonic()  # before the claim: the database's lease starts no earlier
    refusal = claim(sessions, execution_id, owner, limits.lease_seconds)
    if refusal is not None:
        return refusal
    return execute(sessions, execution_id, owner, limits, should_stop, claimed_at)


def execute(sessions: sessionmaker[Session], execution_id: str, owner: str, limits: Limits,
            should_stop: Callable[[], bool] = lambda: False, claimed_at: float | None = None) -> Outcome:
    """Run an execution whose lease `owner` has just taken (at `claimed_at` on the monotonic clock, or now),
    to an outcome. An unexpected exception fails the execution with it; if even that cannot be written, it is
    raised (and the attempts limit ends the loop)."""
    heartbeat = _Heartbeat(sessions, execution_id, owner, limits.lease_seconds,
                           time.monotonic() if claimed_at is None else claimed_at)
    heartbeat.start()
    try:
        return _steps(sessions, execution_id, owner, limits, should_stop, heartbeat)
    except Exception as exc:
        log.exception("execution %s: unexpected error", execution_id)
        return _end(sessions, execution_id, owner, FAILED, None, f"internal error: {_describe(exc)}")
    finally:
        heartbeat.stopped.set()


def _end(sessions: sessionmaker[Session], execution_id: str, owner: str, state: str, output: Any,
         error: str | None) -> Outcome:
    """The outcome (SUCCEEDED or FAILED) written, or "lost" when the lease was (nothing written)."""
    if _finish(sessions, execution_id, owner, state, output, error):
        return "succeeded" if state == SUCCEEDED else "failed"
    log.warning("execution %s: lease lost before its outcome (%s) was written; the new holder decides",
                execution_id, state)
    return "lost"


def _fail_step(sessions: sessionmaker[Session], execution_id: str, owner: str, limits: Limits, name: str,
               position: int, error: str) -> Outcome:
    """Fail the step (its row) and the execution (with the same error), unless the lease was lost meanwhile
    or another holder's row for the step says otherwise."""
    try:
        stored = _record(sessions, execution_id, owner, limits.lease_seconds, name, position, "failed", None, error)
    except Exception:  # the execution's error still says it
        log.exception("execution %s: could not record the failure of step %s", execution_id, name)
        stored = _Stored("failed", None, error)
    if stored is None:
        return "lost"
    if stored.status == "succeeded":  # another holder finished this step: not ours to fail; it carries on
        return "lost"
    return _end(sessions, execution_id, owner, FAILED, None, stored.error)


def _steps(sessions: sessionmaker[Session], execution_id: str, owner: str, limits: Limits,
           should_stop: Callable[[], bool], heartbeat: _Heartbeat) -> Outcome:
    # The spec has no retry setting for a worker timeout (its retry fields are EventBridge Scheduler's, for
    # invoking the scheduler): an execution past it fails, with its lease released.
    deadline = time.monotonic() + limits.timeout if limits.timeout > 0 else None
    overdue = f"exceeded the worker timeout of {limits.timeout:g} s"
    with sessions() as session:
        execution = session.get(Execution, execution_id)
        assert execution is not None
        done = {r.step: r for r in session.scalars(select(StepRun).where(StepRun.execution_id == execution_id))}
        raw, data, attempts = execution.definition, execution.input, execution.attempts
    if limits.max_attempts > 0 and attempts > limits.max_attempts:
        return _end(sessions, execution_id, owner, FAILED, None, f"gave up after {attempts - 1} attempts")
    try:
        definition = Definition.model_validate(raw)
    except RecursionError:
        return _end(sessions, execution_id, owner, FAILED, None, "invalid definition: nested too deeply")
    except ValidationError as exc:
        return _end(sessions, execution_id, owner, FAILED, None, f"invalid definition: {exc.errors()[0]['msg']}")
    outputs: dict[str, Any] = {name: r.output for name, r in done.items() if r.status == "succeeded"}
    last: Any = None
    for position, step in enumerate(definition.steps):
        if step.name in done:
            if done[step.name].status != "succeeded":
                return _end(sessions, execution_id, owner, FAILED, None, done[step.name].error)
            last = done[step.name].output
            continue
        if heartbeat.lost:  # stop before the next step: whoever holds the lease now runs it
            return "lost"
        if should_stop():
            return "released" if release(sessions, execution_id, owner) else "lost"
        if deadline is not None and time.monotonic() >= deadline:
            return _end(sessions, execution_id, owner, FAILED, None, f"{overdue} (before step {step.name})")
        context = {"input": data, "steps": outputs}
        cap = limits.max_output_bytes
        try:
            if isinstance(step, HttpStep):
                body = render(step.body, context, cap)
                bounded_json(body, cap, "request body")  # strict JSON, and bounded before httpx writes it out
                last = http.call(step.method, str(step.url), headers=step.headers, body=body,
                                 timeout=step.timeout, attempts=step.retry.attempts, backoff=step.retry.backoff,
                                 idempotency_key=f"{execution_id}:{step.name}", allowlist=limits.allowlist,
                                 deadline=deadline, max_bytes=cap)
            else:
                last = evaluate(step.expression, context, cap)
            bounded_json(last, cap)
        except http.DeadlineExceeded:
            return _fail_step(sessions, execution_id, owner, limits, step.name, position,
                              f"{overdue} (in step {step.name})")
        except (http.StepFailed, http.BlockedAddress, TransformError) as exc:
            return _fail_step(sessions, execution_id, owner, limits, step.name, position,
                              _describe_step(step.name, exc))
        except Exception as exc:  # anything else fails the step too, rather than the execution looping
            log.warning("execution %s: step %s raised", execution_id, step.name, exc_info=True)
            return _fail_step(sessions, execution_id, owner, limits, step.name, position,
                              f"step {step.name}: {_describe(exc)}")
        try:
            stored = _record(sessions, execution_id, owner, limits.lease_seconds, step.name, position, "succeeded",
                             last, None)
        except Exception as exc:
            log.warning("execution %s: could not store step %s", execution_id, step.name, exc_info=True)
            return _fail_step(sessions, execution_id, owner, limits, step.name, position,
                              f"step {step.name}: could not store its output: {_describe(exc)}")
        if stored is None:  # the lease was lost while the step ran: its result is not ours to record
            log.warning("execution %s: lease lost during step %s; nothing recorded", execution_id, step.name)
            return "lost"
        if stored.status != "succeeded":
            return _end(sessions, execution_id, owner, FAILED, None, stored.error)
        outputs[step.name] = last = stored.output  # the stored row wins over this worker's value
    return _end(sessions, execution_id, owner, SUCCEEDED, last, None)
