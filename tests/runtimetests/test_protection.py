"""ECS task scale-in protection (poll mode): on while the worker holds an execution, off when idle, through a
local stand-in for the ECS agent's endpoint over HTTP (${ECS_AGENT_URI}/task-protection/v1/state)."""

from __future__ import annotations

import json
import logging
import signal
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from flowbuilder.runtime import executions
from flowbuilder.runtime.db.models import Execution
from flowbuilder.runtime.queue import Queue
from flowbuilder.runtime.worker.protection import ScaleInProtection, protection_minutes

from .conftest import FarEnd, call_then_shape, seed, sqs_client, start_worker, utc, wait_until, worker_env


class Agent:
    """Answers as the ECS agent does; records each PUT (when, body); `fail_next` answers with an error."""

    def __init__(self) -> None:
        self.puts: list[tuple[datetime, dict[str, Any]]] = []
        self.refused = 0
        self.fail_next = 0
        agent = self

        class Handler(BaseHTTPRequestHandler):
            def do_PUT(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)))
                assert self.path == "/v3/task-1/task-protection/v1/state", self.path
                if agent.fail_next:
                    agent.fail_next -= 1
                    agent.refused += 1
                    status, answer = 400, {"requestID": "r", "error": {"Code": "ThrottlingException",
                                                                       "Message": "Rate exceeded"}}
                else:
                    agent.puts.append((datetime.now(UTC), body))
                    status, answer = 200, {"protection": {
                        "ExpirationDate": "2026-11-29T10:00:00Z" if body["ProtectionEnabled"] else None,
                        "ProtectionEnabled": body["ProtectionEnabled"],
                        "TaskArn": "arn:aws:ecs:us-east-1:111122223333:task/cluster/task-1"}}
                payload = json.dumps(answer).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.uri = f"http://127.0.0.1:{self.server.server_address[1]}/v3/task-1"  # ECS_AGENT_URI's shape

    def states(self) -> list[bool]:
        return [body["ProtectionEnabled"] for _, body in self.puts]


@pytest.fixture
def agent() -> Iterator[Agent]:
    stand_in = Agent()
    yield stand_in
    stand_in.server.shutdown()
    stand_in.server.server_close()


def test_protected_while_an_execution_runs_and_released_when_idle(database_url: str, sqs_queue: dict[str, str],
                                                                  agent: Agent) -> None:
    far_end = FarEnd(gated=True)  # each call waits until the test opens the gate
    factory, ids = seed(database_url, call_then_shape(far_end.url), 2)
    queue = Queue(sqs_queue["queue_url"], sqs_client(sqs_queue["AWS_ENDPOINT_URL"]))
    worker = start_worker(worker_env(database_url, sqs_queue, ECS_AGENT_URI=agent.uri,
                                     FLOWBUILDER_WORKER_TIMEOUT="30"))

    def state(execution_id: str) -> tuple[str, datetime]:
        with factory() as session:
            execution = session.get(Execution, execution_id)
            return execution.state, utc(execution.updated_at)

    try:
        for n, execution_id in enumerate(ids):
            far_end.gate.clear()
            executions.send(factory, queue, execution_id)
            wait_until(lambda: far_end.in_flight() == 1, 60, "the step in flight")
            assert agent.states() == [True, False] * n + [True]  # on while the execution runs
            on_at, on = agent.puts[-1]
            assert on == {"ProtectionEnabled": True, "ExpiresInMinutes": protection_minutes(30)} == {
                "ProtectionEnabled": True, "ExpiresInMinutes": 3}
            assert on_at <= far_end.arrivals[-1]  # before the execution was claimed and started
            far_end.gate.set()
            wait_until(lambda n=n: len(agent.puts) == 2 * n + 2, 30, "protection off")
            assert agent.states()[-1] is False
            finished, committed_at = state(execution_id)
            assert finished == "succeeded" and committed_at <= agent.puts[-1][0]  # off after the outcome
    finally:
        far_end.gate.set()
        worker.send_signal(signal.SIGTERM)
        output, _ = worker.communicate(timeout=60)
        far_end.close()
    assert worker.returncode == 0, output
    assert agent.states() == [True, False, True, False]


def test_renewed_while_busy_and_a_failing_agent_never_raises(agent: Agent, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="flowbuilder")
    clock = [1000.0]
    protection = ScaleInProtection(agent.uri, minutes=4, clock=lambda: clock[0])
    agent.fail_next = 1
    protection.busy()  # refused: logged, not raised
    assert (agent.refused, agent.states()) == (1, [])
    assert "scale-in protection on failed: HTTP 400" in caplog.text and "ThrottlingException" in caplog.text
    protection.tick()  # retried
    assert agent.states() == [True]
    clock[0] += 119
    protection.busy()  # a second execution: still covered (4 minutes, less than half gone)
    protection.tick()
    assert agent.states() == [True]
    clock[0] += 2  # half of the 4 minutes gone while busy: renewed
    protection.tick()
    assert agent.states() == [True, True]
    protection.idle()
    assert agent.states() == [True, True]  # one execution still running
    protection.idle()
    assert agent.states() == [True, True, False]
    protection.tick()
    assert agent.states() == [True, True, False]

    unreachable = ScaleInProtection("http://127.0.0.1:9", minutes=1, request_timeout=1)
    unreachable.busy()
    unreachable.idle()
    assert "scale-in protection off failed" in caplog.text


def test_protection_covers_twice_the_timeout_within_the_agents_bounds() -> None:
    assert protection_minutes(900) == 32  # 2 x (15 min + 1 min margin)
    assert protection_minutes(1) == 3
    assert protection_minutes(43200) == 1442  # the spec's longest timeout, 12 h
    assert protection_minutes(10**6) == 2880  # the agent's maximum
