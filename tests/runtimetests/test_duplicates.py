"""Duplicate deliveries (issue 12, item 5): a duplicate message for a running execution is deleted (poll) or
ignored (once), never left to climb its receive count into the dead-letter queue; the sweeper queues an
expired lease again and sends it once per sweep; concurrent POSTs with one Idempotency-Key send one message."""

from __future__ import annotations

import logging
import signal
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import event, select, update

from flowbuilder.runtime import executions
from flowbuilder.runtime.api.app import create_app
from flowbuilder.runtime.config import Settings
from flowbuilder.runtime.db.models import Execution, now
from flowbuilder.runtime.queue import Queue
from flowbuilder.runtime.worker import modes

from .conftest import (
    FarEnd,
    call_then_shape,
    queue_with_dead_letters,
    seed,
    sqs_client,
    start_worker,
    two_steps,
    utc,
    wait_until,
    worker_env,
)


@pytest.fixture
def far_end() -> Any:
    server = FarEnd(delay=9.0)
    yield server
    server.close()


def _depth(sqs: Any, url: str) -> int:
    found = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    return int(found["ApproximateNumberOfMessages"]) + int(found["ApproximateNumberOfMessagesNotVisible"])


def test_duplicates_of_a_long_execution_do_not_reach_the_dead_letter_queue(
        database_url: str, moto_server: str, far_end: FarEnd) -> None:
    """Visibility 3 s and maxReceiveCount 2: the execution runs ~9 s (longer than 3 x 2) while duplicates of its
    message keep arriving; it succeeds, its step runs once, and the dead-letter queue stays empty."""
    sqs = sqs_client(moto_server)
    queue_url, dlq_url = queue_with_dead_letters(sqs, "dup", visibility=3, max_receive=2)
    env = {"AWS_ENDPOINT_URL": moto_server, "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
           "AWS_DEFAULT_REGION": "us-east-1", "queue_url": queue_url}
    factory, (execution_id,) = seed(database_url, call_then_shape(far_end.url), 1)
    queue = Queue(queue_url, sqs)
    executions.send(factory, queue, execution_id)
    worker = start_worker(worker_env(database_url, env, FLOWBUILDER_WORKER_CONCURRENCY="4",
                                     FLOWBUILDER_VISIBILITY_SECONDS="3"))
    try:
        wait_until(lambda: far_end.in_flight() == 1, 30, "step in flight")
        started = time.monotonic()
        for _ in range(4):  # duplicates: a concurrent POST, a sweep, a re-sent backlog
            queue.send(execution_id)
            time.sleep(1.0)
        with factory() as session:
            assert session.get(Execution, execution_id).state == "running"
        wait_until(lambda: _state(factory, execution_id) == "succeeded", 60, "success")
        assert time.monotonic() - started > 3 * 2  # it ran past visibility x maxReceiveCount
        wait_until(lambda: _depth(sqs, queue_url) == 0, 20, "an empty queue")
        time.sleep(4)  # anything mishandled would have been redriven by now
        assert _depth(sqs, dlq_url) == 0
    finally:
        worker.send_signal(signal.SIGTERM)
        output, _ = worker.communicate(timeout=60)
    assert far_end.keys == {f"{execution_id}:call": 1}, output
    assert "busy" in output  # the duplicates were seen, and answered


def _state(factory: Any, execution_id: str) -> str:
    with factory() as session:
        return str(session.get(Execution, execution_id).state)


class CheckingQueue:
    """Records each send, with the execution's row as committed when the message leaves."""

    def __init__(self, factory: Any, delay: float = 0.0) -> None:
        self.factory, self.delay = factory, delay
        self.sent: list[str] = []
        self.rows: dict[str, tuple[str, Any, Any]] = {}
        self.lock = threading.Lock()

    def send(self, execution_id: str) -> None:
        time.sleep(self.delay)
        with self.factory() as session:
            row = session.get(Execution, execution_id)
            seen = (row.state, row.lease_owner, row.enqueued_at)
        with self.lock:
            self.sent.append(execution_id)
            self.rows[execution_id] = seen

    def reachable(self) -> bool:
        return True


def test_the_sweeper_queues_an_expired_lease_in_one_statement_and_sends_once(database_url: str) -> None:
    factory, (expired, unsent, stale, live) = seed(database_url, two_steps("http://127.0.0.1:9"), 4)
    long_ago = now() - timedelta(hours=2)
    with factory.begin() as session:
        session.execute(update(Execution).where(Execution.id == expired).values(
            state="running", lease_owner="dead", lease_expires_at=now() - timedelta(seconds=5), enqueued_at=long_ago))
        session.execute(update(Execution).where(Execution.id == unsent).values(created_at=long_ago))
        session.execute(update(Execution).where(Execution.id == stale).values(created_at=long_ago,
                                                                              enqueued_at=long_ago))
        session.execute(update(Execution).where(Execution.id == live).values(
            state="running", lease_owner="alive", lease_expires_at=now() + timedelta(seconds=60), enqueued_at=now()))
    statements: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        if statement.lstrip().upper().startswith("UPDATE"):
            statements.append(statement)

    engine = factory.kw["bind"]
    queue = CheckingQueue(factory)
    event.listen(engine, "before_cursor_execute", record)
    try:
        before = now()
        sent = executions.sweep(factory, queue)  # type: ignore[arg-type]
    finally:
        event.remove(engine, "before_cursor_execute", record)
    assert sorted(sent) == sorted([expired, unsent, stale]) and sorted(queue.sent) == sorted(sent)
    assert len(statements) == 1, statements  # state, lease and enqueue time: one UPDATE
    state, owner, enqueued = queue.rows[expired]  # as committed before its message left
    assert (state, owner) == ("queued", None) and utc(enqueued) >= before - timedelta(seconds=1)
    with factory() as session:
        row = session.get(Execution, expired)
        assert (row.state, row.lease_owner, row.lease_expires_at) == ("queued", None, None)
        assert session.get(Execution, live).state == "running"
    assert executions.sweep(factory, queue) == []  # type: ignore[arg-type]
    assert len(queue.sent) == 3  # a second sweep right after sends nothing new


def test_concurrent_posts_with_one_key_send_one_message(database_url: str) -> None:
    settings = Settings(database_url=database_url, api_keys=("k",), base_path="/api")
    queue = CheckingQueue(None, delay=0.3)  # a slow send: the other requests find the execution unsent
    client = TestClient(create_app(settings, queue))  # type: ignore[arg-type]
    queue.factory = client.app.state.sessions  # type: ignore[attr-defined]
    auth = {"Authorization": "Bearer k"}
    workflow = client.post("/api/workflows", json={"name": "wf", "definition": two_steps("http://127.0.0.1:9")},
                           headers=auth).json()["id"]
    start = threading.Barrier(6, timeout=10)
    answers: list[Any] = []

    def post() -> None:
        start.wait()
        answers.append(client.post(f"/api/workflows/{workflow}/executions", json={"input": {"n": 1}},
                                   headers={**auth, "Idempotency-Key": "same"}))

    threads = [threading.Thread(target=post) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert [r.status_code for r in answers] == [202] * 6, [r.text for r in answers]
    ids = {r.json()["id"] for r in answers}
    assert len(ids) == 1
    with queue.factory() as session:
        assert session.scalar(select(Execution.enqueued_at).where(Execution.id == ids.pop())) is not None
    assert len(queue.sent) == 1, queue.sent


def test_a_failed_send_leaves_the_execution_unsent_for_the_next_post(database_url: str) -> None:
    factory, (execution_id,) = seed(database_url, two_steps("http://127.0.0.1:9"), 1)

    class Down:
        def send(self, _execution_id: str) -> None:
            raise RuntimeError("queue unreachable")

    with pytest.raises(RuntimeError):
        executions.enqueue(factory, Down(), execution_id)  # type: ignore[arg-type]
    with factory() as session:
        assert session.get(Execution, execution_id).enqueued_at is None
    queue = CheckingQueue(factory)
    assert executions.enqueue(factory, queue, execution_id) is True  # type: ignore[arg-type]
    assert executions.enqueue(factory, queue, execution_id) is False  # type: ignore[arg-type]
    assert queue.sent == [execution_id]


def test_once_mode_ignores_a_duplicate_of_a_running_execution(database_url: str, sqs_queue: dict[str, str]) -> None:
    factory, (execution_id,) = seed(database_url, two_steps("http://127.0.0.1:9"), 1)
    with factory.begin() as session:
        session.execute(update(Execution).where(Execution.id == execution_id).values(
            state="running", lease_owner="alive", lease_expires_at=now() + timedelta(seconds=60), enqueued_at=now()))
    env = worker_env(database_url, sqs_queue, FLOWBUILDER_WORKER_MODE="once", FLOWBUILDER_EXECUTION_ID=execution_id)
    proc = subprocess.run([sys.executable, "-m", "flowbuilder.runtime.worker"], env=env, capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert f"execution {execution_id}: busy" in proc.stdout + proc.stderr
    with factory() as session:
        row = session.get(Execution, execution_id)
        assert (row.state, row.lease_owner) == ("running", "alive")
    sqs = sqs_client(sqs_queue["AWS_ENDPOINT_URL"])
    assert _depth(sqs, sqs_queue["queue_url"]) == 0  # nothing sent again


def test_an_exception_in_a_poll_workers_thread_is_logged_with_its_execution(caplog: pytest.LogCaptureFixture) -> None:
    def boom() -> str:
        raise RuntimeError("database went away")

    with caplog.at_level(logging.ERROR, logger="flowbuilder.worker"), ThreadPoolExecutor(1) as pool:
        future = pool.submit(boom)
        future.add_done_callback(modes._report("exec-123"))
        with pytest.raises(RuntimeError):
            future.result()
    assert any("exec-123" in r.getMessage() and "database went away" in r.getMessage() and r.exc_info
               for r in caplog.records), caplog.text
