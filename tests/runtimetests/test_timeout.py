"""The spec's worker timeout (FLOWBUILDER_WORKER_TIMEOUT): an execution past it is stopped and failed, in
both worker modes, against a far end slower than the timeout."""

from __future__ import annotations

import ipaddress
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import select

from flowbuilder.runtime import executions
from flowbuilder.runtime.db.models import Execution, StepRun
from flowbuilder.runtime.queue import Queue
from flowbuilder.runtime.workflows import engine

from .conftest import FarEnd, Sink, call_then_shape, seed, sqs_client, start_worker, utc, wait_until, worker_env

TIMEOUT = 2  # seconds; the far end answers after 6


@pytest.fixture
def far_end() -> Iterator[FarEnd]:
    slow = FarEnd(delay=6)
    yield slow
    slow.close()


def _check_failed_by_the_timeout(factory: Any, execution_id: str, far_end: FarEnd) -> None:
    with factory() as session:
        execution = session.get(Execution, execution_id)
        steps = [(s.step, s.status, s.error) for s in session.scalars(
            select(StepRun).where(StepRun.execution_id == execution_id))]
    reason = f"exceeded the worker timeout of {TIMEOUT} s (in step call)"
    assert (execution.state, execution.error, execution.lease_owner) == ("failed", reason, None)
    assert steps == [("call", "failed", reason)]  # the transform after it never started
    assert far_end.keys == {f"{execution_id}:call": 1}  # cut at the deadline, not retried
    # The step was stopped at the timeout, not when the far end answered six seconds in.
    finished_after = utc(execution.updated_at) - far_end.arrivals[0]
    assert finished_after.total_seconds() < TIMEOUT + 1.5, finished_after


def test_once_mode_fails_an_execution_past_the_worker_timeout(database_url: str, sqs_queue: dict[str, str],
                                                              far_end: FarEnd) -> None:
    factory, (execution_id,) = seed(database_url, call_then_shape(far_end.url), 1)
    env = worker_env(database_url, sqs_queue, FLOWBUILDER_WORKER_MODE="once", FLOWBUILDER_EXECUTION_ID=execution_id,
                     FLOWBUILDER_WORKER_TIMEOUT=str(TIMEOUT))
    done = subprocess.run([sys.executable, "-m", "flowbuilder.runtime.worker"], env=env, capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"execution {execution_id}: failed" in done.stderr
    _check_failed_by_the_timeout(factory, execution_id, far_end)


def test_poll_mode_fails_an_execution_past_the_worker_timeout(database_url: str, sqs_queue: dict[str, str],
                                                              far_end: FarEnd) -> None:
    factory, (execution_id,) = seed(database_url, call_then_shape(far_end.url), 1)
    sqs = sqs_client(sqs_queue["AWS_ENDPOINT_URL"])
    executions.send(factory, Queue(sqs_queue["queue_url"], sqs), execution_id)
    worker = start_worker(worker_env(database_url, sqs_queue, FLOWBUILDER_WORKER_TIMEOUT=str(TIMEOUT)))
    try:
        def finished() -> bool:
            with factory() as session:
                return session.get(Execution, execution_id).state == "failed"

        wait_until(finished, 60, "failed execution")
        attributes = ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
        wait_until(lambda: set(sqs.get_queue_attributes(QueueUrl=sqs_queue["queue_url"], AttributeNames=attributes)
                               ["Attributes"].values()) == {"0"}, 10, "deleted message")  # its outcome is final
    finally:
        worker.send_signal(signal.SIGTERM)
        output, _ = worker.communicate(timeout=60)
    assert worker.returncode == 0, output
    _check_failed_by_the_timeout(factory, execution_id, far_end)


def test_retries_and_back_off_stop_at_the_deadline(database_url: str, sink: Sink) -> None:
    """A far end that keeps answering 503: the back-off that would end past the deadline is not slept."""
    definition = {"steps": [{"type": "http", "name": "call", "url": f"{sink.url}/x",
                             "retry": {"attempts": 5, "backoff": 1.0}}]}
    factory, (execution_id,) = seed(database_url, definition, 1)
    sink.fail_next = 10
    limits = engine.Limits(allowlist=(ipaddress.ip_network("127.0.0.1/32"),), timeout=1.5)
    started = time.monotonic()
    assert engine.run(factory, execution_id, "w1", limits) == "failed"
    assert time.monotonic() - started < 1.5  # 503, 1 s back-off, 503, then no time for a 2 s back-off
    with factory() as session:
        assert session.get(Execution, execution_id).error == "exceeded the worker timeout of 1.5 s (in step call)"
    assert sink.fail_next == 8  # two attempts reached it
