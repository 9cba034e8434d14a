"""Runs one execution, correct under at-least-once delivery.

- A claim is a conditional UPDATE: only one worker holds an execution's lease at a time; an expired lease
  (a killed worker) can be taken over.
- Each finished step is a row (unique per execution and step): a re-delivered execution resumes after its
  last finished step, and a step is never recorded twice.
- HTTP steps send an Idempotency-Key derived from execution and step, so a step interrupted after the
  request but before its row was written is safe to repeat at the far end.
- A failing step fails the execution with its error; it is not retried forever.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Literal

from pydantic import ValidationError
from sqlalchemy import or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from ..db.models import FAILED, QUEUED, RUNNING, SUCCEEDED, Execution, StepRun, now
from . import http
from .definition import Definition, HttpStep
from .transform import TransformError, evaluate, render

Outcome = Literal["succeeded", "failed", "released", "busy", "finished", "missing"]


@dataclass(frozen=True)
class Limits:
    lease_seconds: int = 60
    allowlist: tuple[http.Network, ...] = ()


def claim(sessions: sessionmaker[Session], execution_id: str, owner: str, lease_seconds: int) -> Outcome | None:
    """Take the lease, or say why not: missing, finished (nothing to do) or busy (another live holder)."""
    with sessions.begin() as session:
        moment = now()
        result = session.execute(
            update(Execution)
            .where(Execution.id == execution_id, Execution.state.in_([QUEUED, RUNNING]),
                   or_(Execution.lease_owner.is_(None), Execution.lease_owner == owner,
                       Execution.lease_expires_at < moment))
            .values(state=RUNNING, lease_owner=owner, lease_expires_at=moment + timedelta(seconds=lease_seconds),
                    attempts=Execution.attempts + 1, updated_at=moment)
            .execution_options(synchronize_session=False))
        if result.rowcount == 1:  # type: ignore[attr-defined]
            return None
        state = session.scalar(select(Execution.state).where(Execution.id == execution_id))
    if state is None:
        return "missing"
    return "finished" if state in (SUCCEEDED, FAILED) else "busy"


def renew(sessions: sessionmaker[Session], execution_id: str, owner: str, lease_seconds: int) -> bool:
    with sessions.begin() as session:
        result = session.execute(
            update(Execution).where(Execution.id == execution_id, Execution.lease_owner == owner,
                                    Execution.state == RUNNING)
            .values(lease_expires_at=now() + timedelta(seconds=lease_seconds))
            .execution_options(synchronize_session=False))
        return bool(result.rowcount == 1)  # type: ignore[attr-defined]


def release(sessions: sessionmaker[Session], execution_id: str, owner: str) -> None:
    """Give the execution back (SIGTERM, Spot interruption): queued, no lease, finished steps kept."""
    with sessions.begin() as session:
        session.execute(
            update(Execution).where(Execution.id == execution_id, Execution.lease_owner == owner,
                                    Execution.state == RUNNING)
            .values(state=QUEUED, lease_owner=None, lease_expires_at=None, updated_at=now())
            .execution_options(synchronize_session=False))


def _finish(sessions: sessionmaker[Session], execution_id: str, owner: str, state: str, output: Any,
            error: str | None) -> None:
    with sessions.begin() as session:
        session.execute(
            update(Execution).where(Execution.id == execution_id, Execution.lease_owner == owner)
            .values(state=state, output=output, error=error, lease_owner=None, lease_expires_at=None,
                    updated_at=now())
            .execution_options(synchronize_session=False))


def _record(sessions: sessionmaker[Session], execution_id: str, name: str, position: int, status: str,
            output: Any, error: str | None, attempts: int) -> None:
    try:
        with sessions.begin() as session:
            session.add(StepRun(execution_id=execution_id, step=name, position=position, status=status,
                                output=output, error=error, attempts=attempts))
    except IntegrityError:
        pass  # another holder recorded this step first (it had the lease before ours expired): keep theirs


class _Heartbeat(threading.Thread):
    """Renews the lease while a step runs, so only a dead worker's lease expires."""

    def __init__(self, sessions: sessionmaker[Session], execution_id: str, owner: str, lease: int) -> None:
        super().__init__(daemon=True)
        self.args = (sessions, execution_id, owner, lease)
        self.stopped = threading.Event()
        self.lost = False

    def run(self) -> None:
        while not self.stopped.wait(max(1.0, self.args[3] / 3)):
            if not renew(*self.args):
                self.lost = True
                return


def run(sessions: sessionmaker[Session], execution_id: str, owner: str, limits: Limits,
        should_stop: Callable[[], bool] = lambda: False) -> Outcome:
    refusal = claim(sessions, execution_id, owner, limits.lease_seconds)
    if refusal is not None:
        return refusal
    heartbeat = _Heartbeat(sessions, execution_id, owner, limits.lease_seconds)
    heartbeat.start()
    try:
        return _steps(sessions, execution_id, owner, limits, should_stop, heartbeat)
    finally:
        heartbeat.stopped.set()


def _steps(sessions: sessionmaker[Session], execution_id: str, owner: str, limits: Limits,
           should_stop: Callable[[], bool], heartbeat: _Heartbeat) -> Outcome:
    with sessions() as session:
        execution = session.get(Execution, execution_id)
        assert execution is not None
        done = {r.step: r for r in session.scalars(select(StepRun).where(StepRun.execution_id == execution_id))}
        raw, data = execution.definition, execution.input
    try:
        definition = Definition.model_validate(raw)
    except ValidationError as exc:
        _finish(sessions, execution_id, owner, FAILED, None, f"invalid definition: {exc.errors()[0]['msg']}")
        return "failed"
    outputs: dict[str, Any] = {name: r.output for name, r in done.items() if r.status == "succeeded"}
    last: Any = None
    for position, step in enumerate(definition.steps):
        if step.name in done:
            if done[step.name].status != "succeeded":
                _finish(sessions, execution_id, owner, FAILED, None, done[step.name].error)
                return "failed"
            last = done[step.name].output
            continue
        if should_stop() or heartbeat.lost:
            release(sessions, execution_id, owner)
            return "released"
        context = {"input": data, "steps": outputs}
        try:
            if isinstance(step, HttpStep):
                last = http.call(step.method, str(step.url), headers=step.headers, body=render(step.body, context),
                                 timeout=step.timeout, attempts=step.retry.attempts, backoff=step.retry.backoff,
                                 idempotency_key=f"{execution_id}:{step.name}", allowlist=limits.allowlist)
            else:
                last = evaluate(step.expression, context)
        except (http.StepFailed, http.BlockedAddress, TransformError) as exc:
            error = f"step {step.name}: {exc}"
            _record(sessions, execution_id, step.name, position, "failed", None, error, 1)
            _finish(sessions, execution_id, owner, FAILED, None, error)
            return "failed"
        if heartbeat.lost:  # someone else holds it now; do not write over their work
            return "released"
        _record(sessions, execution_id, step.name, position, "succeeded", last, None, 1)
        outputs[step.name] = last
    _finish(sessions, execution_id, owner, SUCCEEDED, last, None)
    return "succeeded"
