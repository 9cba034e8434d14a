"""Runs one execution, correct under at-least-once delivery.

- The execution's lease (leases.py) is taken by a claim and renewed by a heartbeat; every write below (a
  step row, an outcome, a release) passes the lease fence and writes nothing once the lease is lost. So a
  worker that stalled past its lease (paused, a dropped connection, a long GC) and resumes cannot record a
  step or an outcome over the worker that took over; it stops before its next step ("lost"). Its step in
  flight may still reach the far end: the Idempotency-Key makes the repeat harmless there.
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
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from ..db.models import FAILED, SUCCEEDED, Execution, StepRun
from . import http, leases
from .definition import Definition, HttpStep
from .leases import claim, release
from .transform import DEFAULT_LIMIT, TransformError, bounded_json, evaluate, render

# lost: the lease went to another worker (or expired) while this one ran; it wrote nothing after that.
Outcome = Literal["succeeded", "failed", "released", "lost", "busy", "finished", "missing"]

log = logging.getLogger("flowbuilder.engine")


@dataclass(frozen=True)
class Limits:
    lease_seconds: int = 60
    allowlist: tuple[http.Network, ...] = ()
    timeout: float = 0  # seconds one claim may run (the spec's worker timeout); 0: unbounded
    max_attempts: int = 10  # claims of one execution; past it, it fails (0: unbounded)
    max_output_bytes: int = DEFAULT_LIMIT  # a step's output (and an HTTP step's request and response body)


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
            if not leases.held(session, execution_id, owner, lease_expires_at=leases.extended(lease_seconds)):
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
    heartbeat = leases.Heartbeat(sessions, execution_id, owner, limits.lease_seconds,
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
    if leases.finish(sessions, execution_id, owner, state, output, error):
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
           should_stop: Callable[[], bool], heartbeat: leases.Heartbeat) -> Outcome:
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
