"""Lease fencing (issue 12, item 1): a worker that lost its lease writes nothing, and stops.

A worker stalled past its lease (paused with SIGSTOP, or unable to renew through a dropped connection) is
overtaken by another worker, which runs the step again with the same Idempotency-Key; when the first one
resumes its step's answer is discarded, its outcome is not written, and it runs no further step. Lease times
are the database's clock. The far end here is not idempotent on purpose: it answers with the arrival number,
so the stored rows show whose call was kept.
"""

from __future__ import annotations

import ipaddress
import signal
import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from http.server import BaseHTTPRequestHandler
from typing import Any

import pytest
from sqlalchemy import select, update
from sqlalchemy.exc import OperationalError

from conftest import json_server
from flowbuilder.runtime.db import session as db_session
from flowbuilder.runtime.db.models import Execution, StepRun, now
from flowbuilder.runtime.workflows import engine, leases

from .conftest import seed, start_worker, worker_env

LOCAL = (ipaddress.ip_network("127.0.0.1/32"),)
LEASE = 2  # seconds


class FarEnd:
    """Answers {"arrival": n}. Holds the first and the second request until `release[n]` is set, after setting
    `arrived[n]`; `during_first` runs while it holds the first."""

    def __init__(self) -> None:
        self.arrivals: list[str] = []
        self.arrived = {1: threading.Event(), 2: threading.Event()}
        self.release = {1: threading.Event(), 2: threading.Event()}
        self.during_first: Any = None
        self.lock = threading.Lock()
        self.server, base = json_server(self.respond)
        self.url = f"{base}/hook"

    def respond(self, request: BaseHTTPRequestHandler, _body: Any) -> tuple[int, Any]:
        with self.lock:
            self.arrivals.append(request.headers.get("Idempotency-Key", ""))
            arrival = len(self.arrivals)
        if arrival in self.arrived:
            self.arrived[arrival].set()
            if arrival == 1 and self.during_first is not None:
                self.during_first()
            self.release[arrival].wait(60)
        return 200, {"arrival": arrival}

    def open(self) -> None:
        for event in self.release.values():
            event.set()


@pytest.fixture
def far_end() -> Iterator[FarEnd]:
    end = FarEnd()
    yield end
    end.open()
    end.server.shutdown()


def call_then_shape(url: str) -> dict[str, Any]:
    return {"steps": [{"type": "http", "name": "call", "url": url, "body": {"n": "{{ input.n }}"}},
                      {"type": "transform", "name": "shape", "expression": "steps.call"}]}


def _limits() -> engine.Limits:
    return engine.Limits(lease_seconds=LEASE, allowlist=LOCAL)


def _take_over(factory: Any, execution_id: str, owner: str) -> str:
    """Claim as soon as the first holder's lease has expired (by the database's clock), and run it."""
    deadline = time.monotonic() + 15
    while True:
        outcome = engine.run(factory, execution_id, owner, _limits())
        if outcome != "busy":
            return outcome
        assert time.monotonic() < deadline, "the stalled worker's lease never expired"
        time.sleep(0.2)


def _rows(factory: Any, execution_id: str) -> list[tuple[str, str, Any]]:
    with factory() as session:
        return [(r.step, r.status, r.output) for r in session.scalars(
            select(StepRun).where(StepRun.execution_id == execution_id).order_by(StepRun.position))]


def _execution(factory: Any, execution_id: str) -> Execution:
    with factory() as session:
        found = session.get(Execution, execution_id)
        assert found is not None
        return found


def _taking_over(factory: Any, execution_id: str, owner: str) -> tuple[threading.Thread, list[str]]:
    outcomes: list[str] = []
    thread = threading.Thread(target=lambda: outcomes.append(_take_over(factory, execution_id, owner)))
    thread.start()
    return thread, outcomes


def test_a_paused_worker_is_overtaken_and_writes_nothing_when_it_resumes(
        database_url: str, sqs_queue: dict[str, str], far_end: FarEnd) -> None:
    """The order that broke before fencing: the first worker resumes and gets its answer while the second is
    inside the same step; the first must not record it (nor the next step, nor an outcome)."""
    factory, (execution_id,) = seed(database_url, call_then_shape(far_end.url), 1)
    first = start_worker(worker_env(database_url, sqs_queue, FLOWBUILDER_WORKER_MODE="once",
                                    FLOWBUILDER_EXECUTION_ID=execution_id, FLOWBUILDER_LEASE_SECONDS=str(LEASE)))
    try:
        assert far_end.arrived[1].wait(30), "the first worker never called the far end"
        first.send_signal(signal.SIGSTOP)  # stalled inside its HTTP step, its lease not renewed
        second, outcomes = _taking_over(factory, execution_id, "second")
        assert far_end.arrived[2].wait(30), "nobody took the execution over"
        first.send_signal(signal.SIGCONT)
        far_end.release[1].set()  # the first worker's call answers now (arrival 1), the second's is still held
        output, _ = first.communicate(timeout=30)
        assert _rows(factory, execution_id) == []  # the resumed worker recorded nothing
        far_end.release[2].set()
        second.join(30)
    finally:
        first.kill()
    assert (first.returncode, outcomes) == (0, ["succeeded"]), output
    assert "lease lost" in output, output
    assert far_end.arrivals == [f"{execution_id}:call"] * 2  # the step ran twice at the far end, one key
    assert _rows(factory, execution_id) == [("call", "succeeded", {"arrival": 2}),
                                            ("shape", "succeeded", {"arrival": 2})]
    after = _execution(factory, execution_id)
    assert (after.state, after.output, after.lease_owner) == ("succeeded", {"arrival": 2}, None)


def test_a_worker_that_cannot_renew_loses_its_lease_after_one_lease_and_stops(
        database_url: str, far_end: FarEnd, monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture) -> None:
    factory, (execution_id,) = seed(database_url, call_then_shape(far_end.url), 1)
    renew = leases.renew

    def dropped(sessions: Any, execution: str, owner: str, lease: int) -> bool:
        if owner == "first":
            raise OperationalError("UPDATE executions", {}, Exception("server closed the connection"))
        return renew(sessions, execution, owner, lease)

    monkeypatch.setattr(leases, "renew", dropped)
    outcomes: list[str] = []
    first = threading.Thread(target=lambda: outcomes.append(engine.run(factory, execution_id, "first", _limits())))
    first.start()
    assert far_end.arrived[1].wait(30)
    second, taken = _taking_over(factory, execution_id, "second")
    assert far_end.arrived[2].wait(30), "nobody took the execution over"
    far_end.release[1].set()
    first.join(30)
    assert outcomes == ["lost"] and _rows(factory, execution_id) == []
    far_end.release[2].set()
    second.join(30)
    assert taken == ["succeeded"]
    assert any("lease lost" in r.getMessage() for r in caplog.records)
    assert sum("could not renew" in r.getMessage() for r in caplog.records) >= 2  # it retried first
    assert _rows(factory, execution_id) == [("call", "succeeded", {"arrival": 2}),
                                            ("shape", "succeeded", {"arrival": 2})]
    assert _execution(factory, execution_id).output == {"arrival": 2}


def test_a_renew_that_fails_briefly_keeps_the_lease(database_url: str, far_end: FarEnd,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    factory, (execution_id,) = seed(database_url, call_then_shape(far_end.url), 1)
    renew, failures = leases.renew, [2]

    def flaky(*args: Any) -> bool:
        if failures[0]:
            failures[0] -= 1
            raise OperationalError("UPDATE executions", {}, Exception("connection reset"))
        return renew(*args)

    monkeypatch.setattr(leases, "renew", flaky)
    outcomes: list[str] = []
    first = threading.Thread(target=lambda: outcomes.append(engine.run(factory, execution_id, "first", _limits())))
    first.start()
    assert far_end.arrived[1].wait(30)
    for _ in range(8):  # two leases' worth of attempts to take it over, all refused
        time.sleep(LEASE / 4)
        assert leases.claim(factory, execution_id, "second", LEASE) == "busy"
    far_end.open()
    first.join(30)
    assert outcomes == ["succeeded"] and failures == [0]
    assert _rows(factory, execution_id)[0] == ("call", "succeeded", {"arrival": 1})


def test_when_a_step_row_exists_already_the_stored_output_wins(database_url: str, far_end: FarEnd) -> None:
    factory, (execution_id,) = seed(database_url, call_then_shape(far_end.url), 1)

    def another_holder_records_it() -> None:
        with factory.begin() as session:
            session.add(StepRun(execution_id=execution_id, step="call", position=0, status="succeeded",
                                output={"arrival": "stored"}, attempts=1))

    far_end.during_first = another_holder_records_it
    far_end.open()
    assert engine.run(factory, execution_id, "first", _limits()) == "succeeded"
    assert _rows(factory, execution_id) == [("call", "succeeded", {"arrival": "stored"}),
                                            ("shape", "succeeded", {"arrival": "stored"})]
    assert _execution(factory, execution_id).output == {"arrival": "stored"}


def test_an_expired_lease_is_neither_renewed_nor_released_nor_finished(database_url: str) -> None:
    factory, (execution_id,) = seed(database_url, {"steps": [{"type": "transform", "name": "t",
                                                              "expression": "input"}]}, 1)
    assert leases.claim(factory, execution_id, "first", 60) is None
    with factory.begin() as session:  # its holder stalled: the lease ran out, nobody has taken it yet
        session.execute(update(Execution).where(Execution.id == execution_id)
                        .values(lease_expires_at=now() - timedelta(seconds=1)))
    assert not leases.renew(factory, execution_id, "first", 60)
    assert not leases.release(factory, execution_id, "first")
    assert not leases.finish(factory, execution_id, "first", "succeeded", {"x": 1}, None)
    assert engine._record(factory, execution_id, "first", 60, "t", 0, "succeeded", {"x": 1}, None) is None
    found = _execution(factory, execution_id)
    assert (found.state, found.output, found.lease_owner) == ("running", None, "first")
    assert _rows(factory, execution_id) == []
    assert engine.run(factory, execution_id, "second", engine.Limits()) == "succeeded"  # taken over


def test_lease_times_are_the_databases_clock_not_the_hosts(database_url: str,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    if not database_url.startswith("postgresql"):
        pytest.skip("SQLite is a file on one host: its clock is the only one")
    factory, (execution_id,) = seed(database_url, {"steps": [{"type": "transform", "name": "t",
                                                              "expression": "input"}]}, 1)
    assert leases.claim(factory, execution_id, "first", 60) is None
    fast = now() + timedelta(seconds=90)  # a host whose clock is 90 s ahead sees that lease as long expired
    for module in (db_session, leases):  # wherever the host's clock is read
        monkeypatch.setattr(module, "now", lambda: fast, raising=False)
    assert leases.claim(factory, execution_id, "second", 60) == "busy"
    assert leases.renew(factory, execution_id, "first", 60)
    with factory() as session:
        expires = session.scalar(select(Execution.lease_expires_at).where(Execution.id == execution_id))
    assert expires is not None and abs((expires - now()).total_seconds() - 60) < 5  # not 150


def test_a_claim_that_waited_for_the_running_limits_lock_writes_a_whole_lease(database_url: str) -> None:
    """On PostgreSQL now() is the transaction's start: a claim that waited 2 s for the running limit's advisory
    lock wrote a lease 2 s short (and counted leases that expired during the wait as live). The lease is
    measured from the claim itself (statement_timestamp())."""
    if not database_url.startswith("postgresql"):
        pytest.skip("the running limit's lock is PostgreSQL's advisory lock")
    from sqlalchemy import func

    factory, _ = seed(database_url, {"steps": [{"type": "transform", "name": "t", "expression": "input"}]}, 1)
    holder = db_session.engine(database_url).connect()
    holder.execute(select(func.pg_advisory_xact_lock(leases._ADMISSION_LOCK)))
    threading.Timer(2.0, holder.commit).start()
    try:
        assert leases.claim_next(factory, "w", 60, 5) is not None
        with factory() as session:
            expires, moment = session.execute(select(Execution.lease_expires_at, func.statement_timestamp())).one()
    finally:
        holder.close()
    assert (expires - moment).total_seconds() > 59.0  # 58 and less before


def test_a_poll_worker_that_lost_its_lease_to_a_holder_that_deleted_the_message_says_so(
        monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    """After a stall that outlasted the message's visibility, the new holder may have deleted the message: the
    stale receipt handle is refused (ReceiptHandleIsInvalid on SQS), and the worker reports "lost", not a
    traceback."""
    from flowbuilder.runtime.config import Settings
    from flowbuilder.runtime.queue import Message
    from flowbuilder.runtime.worker import modes

    class GoneQueue:
        def extend(self, message: Message, seconds: int) -> None:
            if seconds == 0:
                raise RuntimeError("ReceiptHandleIsInvalid")

        def delete(self, message: Message) -> None:
            raise AssertionError("a lost execution's message is not deleted")

    monkeypatch.setattr(engine, "run", lambda *args, **kwargs: "lost")
    caplog.set_level("INFO")
    message = Message(body="e-1", receipt="stale", receive_count=2)
    outcome = modes._run_message(None, GoneQueue(), message, Settings(), threading.Event())  # type: ignore[arg-type]
    assert outcome == "lost"
    assert "execution e-1: its message is gone (RuntimeError)" in caplog.text
    assert "execution e-1: lost" in caplog.text
