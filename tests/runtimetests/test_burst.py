"""Bursts in once mode (ultra): Pipes starts one task per message with no concurrency limit, so the runtime
bounds running executions (FLOWBUILDER_WORKER_MAX_RUNNING) and admitted tasks drain what was refused. And a
message whose task never started (RunTask failed) is not the only copy of the work."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from flowbuilder.runtime import executions
from flowbuilder.runtime.db.models import Execution
from flowbuilder.runtime.queue import Queue

from .conftest import (
    FarEnd,
    Sink,
    call_then_shape,
    queue_with_dead_letters,
    seed,
    sqs_client,
    two_steps,
    wait_until,
    worker_env,
)

EXECUTIONS, LIMIT = 6, 2


def _once(env: dict[str, str], execution_id: str, log: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-m", "flowbuilder.runtime.worker"],
                            env={**env, "FLOWBUILDER_EXECUTION_ID": execution_id}, stdout=log.open("w"),
                            stderr=subprocess.STDOUT)


def _rows(factory: Any) -> list[tuple[str, str | None, int]]:
    with factory() as session:
        return [(e.state, e.lease_owner, e.attempts) for e in session.scalars(select(Execution))]


def test_a_burst_runs_at_most_the_limit_and_every_execution_once(database_url: str, sqs_queue: dict[str, str],
                                                                 tmp_path: Path) -> None:
    far_end = FarEnd(gated=True)  # holds every call until the test has seen who was admitted
    factory, ids = seed(database_url, call_then_shape(far_end.url), EXECUTIONS)
    env = worker_env(database_url, sqs_queue, FLOWBUILDER_WORKER_MODE="once",
                     FLOWBUILDER_WORKER_MAX_RUNNING=str(LIMIT))
    logs = [tmp_path / f"task-{n}.log" for n in range(EXECUTIONS)]
    tasks = [_once(env, execution_id, log) for execution_id, log in zip(ids, logs, strict=True)]  # all at once
    try:
        # While the far end holds the calls: the limit runs, every other task is refused and has exited.
        wait_until(lambda: far_end.in_flight() == LIMIT
                   and sum(t.poll() is not None for t in tasks) == EXECUTIONS - LIMIT, 120, "the burst admitted")
        time.sleep(0.5)
        assert far_end.in_flight() == LIMIT
        refused = [log.read_text() for task, log in zip(tasks, logs, strict=True) if task.poll() is not None]
        assert all(": deferred (2 executions running, the limit)" in text for text in refused), refused
        assert {t.returncode for t in tasks if t.poll() is not None} == {0}
        far_end.gate.set()
        for task in tasks:  # the admitted tasks drain what was refused, then exit
            assert task.wait(120) == 0
    finally:
        far_end.close()
        for task in tasks:
            if task.poll() is None:
                task.kill()
    assert far_end.peak == LIMIT
    assert far_end.keys == {f"{i}:call": 1 for i in ids}  # every execution's step exactly once
    assert _rows(factory) == [("succeeded", None, 1)] * EXECUTIONS
    drained = sum(log.read_text().count("(drained from the queue)") for log in logs)
    assert drained == EXECUTIONS - LIMIT


def test_a_message_whose_task_never_started_is_recovered_by_the_sweeper(
        database_url: str, moto_server: str, sink: Sink, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """RunTask fails (throttled, a quota, no Spot capacity): the Pipe does not delete the message, which comes
    back after its visibility timeout and, after maxReceiveCount receives, lands in the dead-letter queue. The
    execution is still queued in the database, and the sweeper sends it again."""
    sqs = sqs_client(moto_server)
    queue_url, dead_letters = queue_with_dead_letters(sqs, "pipe", visibility=1, max_receive=2)
    queue = Queue(queue_url, sqs)
    factory, (execution_id,) = seed(database_url, two_steps(sink.url), 1)
    executions.send(factory, queue, execution_id)

    receives = 0
    deadline = time.monotonic() + 30
    moved: list[Any] = []
    while not moved:
        assert time.monotonic() < deadline, "the message never reached the dead-letter queue"
        receives += len(queue.receive(1, wait=1))  # RunTask failed: nothing deletes it
        moved = sqs.receive_message(QueueUrl=dead_letters, WaitTimeSeconds=0).get("Messages", [])
    assert receives == 2 and [m["Body"] for m in moved] == [execution_id]
    assert _rows(factory) == [("queued", None, 0)]  # nothing ran, nothing is lost

    monkeypatch.setenv("FLOWBUILDER_SWEEP_QUEUED_AFTER", "1")
    time.sleep(1.1)
    assert executions.sweep(factory, queue) == [execution_id]
    (message,) = queue.receive(1, wait=5)
    queue.delete(message)  # this time RunTask succeeds, and Pipes deletes the message
    env = worker_env(database_url, {"queue_url": queue_url, "AWS_ENDPOINT_URL": moto_server,
                                    "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                                    "AWS_DEFAULT_REGION": "us-east-1"},
                     FLOWBUILDER_WORKER_MODE="once", FLOWBUILDER_WORKER_MAX_RUNNING=str(LIMIT))
    task = _once(env, message.body, tmp_path / "task.log")
    assert task.wait(60) == 0, (tmp_path / "task.log").read_text()
    assert _rows(factory) == [("succeeded", None, 1)]
    assert sink.keys == {f"{execution_id}:call": 1}
