"""Runtime fixtures: a real PostgreSQL (URL from FLOWBUILDER_TEST_POSTGRES_URL, which .ci/run sets after
starting the machine's server) and SQLite, SQS on moto's server over HTTP, and a local HTTP sink that
counts Idempotency-Keys."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import boto3
import pytest
from sqlalchemy import update

from conftest import fresh_postgres_url, json_server
from flowbuilder.runtime import executions
from flowbuilder.runtime.db.models import Execution, Workflow
from flowbuilder.runtime.db.session import migrate, sessions


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'flowbuilder.db'}"
    return fresh_postgres_url()


@pytest.fixture
def sqs_queue(moto_server: str) -> Iterator[dict[str, str]]:
    """A queue with a dead-letter queue (maxReceiveCount 3) on moto, and the env to reach it."""
    env = {"AWS_ENDPOINT_URL": moto_server, "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
           "AWS_DEFAULT_REGION": "us-east-1"}
    queue, dlq = queue_with_dead_letters(sqs_client(moto_server), "q", visibility=5, max_receive=3)
    yield {**env, "queue_url": queue, "dlq_url": dlq}


def sqs_client(endpoint: str) -> Any:
    return boto3.client("sqs", region_name="us-east-1", endpoint_url=endpoint, aws_access_key_id="testing",
                        aws_secret_access_key="testing")


def queue_with_dead_letters(sqs: Any, prefix: str, *, visibility: int, max_receive: int) -> tuple[str, str]:
    """(queue URL, dead-letter queue URL): a uniquely named queue redriving after max_receive receives."""
    name = f"{prefix}-{uuid.uuid4().hex[:8]}"
    dlq = sqs.create_queue(QueueName=f"{name}-dlq")["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    queue = sqs.create_queue(QueueName=name, Attributes={
        "VisibilityTimeout": str(visibility),
        "RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": str(max_receive)})})["QueueUrl"]
    return queue, dlq


def seed(url: str, definition: dict[str, Any], count: int, name: str = "wf") -> tuple[Any, list[str]]:
    """Migrate the database, store one workflow and record `count` executions of it (not sent)."""
    migrate(url)
    factory = sessions(url)
    with factory.begin() as session:
        workflow = Workflow(name=name, version=1, definition=definition)
        session.add(workflow)
    ids = [executions.create(factory, workflow, {"n": i}, None)[0].id for i in range(count)]
    return factory, ids


@dataclass
class Sink:
    url: str
    keys: Counter[str] = field(default_factory=Counter)
    bodies: list[Any] = field(default_factory=list)
    fail_next: int = 0


@pytest.fixture
def sink() -> Iterator[Sink]:
    """A local HTTP service for workflow steps: echoes JSON, counts Idempotency-Keys."""
    state = Sink(url="")
    lock = threading.Lock()

    def respond(request: BaseHTTPRequestHandler, body: Any) -> tuple[int, Any]:
        with lock:
            if state.fail_next:
                state.fail_next -= 1
                return 503, None
            state.keys[request.headers.get("Idempotency-Key", "")] += 1
            state.bodies.append(body)
        return 200, {"echo": body, "path": request.path}

    server, state.url = json_server(respond)
    yield state
    server.shutdown()


def two_steps(sink_url: str) -> dict[str, Any]:
    return {"steps": [
        {"type": "http", "name": "call", "url": f"{sink_url}/hook", "body": {"n": "{{ input.n }}"},
         "retry": {"attempts": 3, "backoff": 0.05}},
        {"type": "transform", "name": "shape", "expression": "{n: steps.call.echo.n, path: steps.call.path}"},
    ]}


class FarEnd:
    """The far end of HTTP steps, slow on purpose: holds each request `delay` seconds, or until `gate` is set
    when `gated`; counts requests in flight and the most at once (`peak`), and each Idempotency-Key."""

    def __init__(self, delay: float = 0.0, gated: bool = False) -> None:
        self.delay, self.gate = delay, threading.Event()
        if not gated:
            self.gate.set()
        self.keys: Counter[str] = Counter()
        self.arrivals: list[datetime] = []
        self.running = self.peak = 0
        self.lock = threading.Lock()
        far_end = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with far_end.lock:
                    far_end.keys[self.headers.get("Idempotency-Key", "")] += 1
                    far_end.arrivals.append(datetime.now(UTC))
                    far_end.running += 1
                    far_end.peak = max(far_end.peak, far_end.running)
                try:
                    far_end.gate.wait(60)
                    time.sleep(far_end.delay)
                    payload = json.dumps({"ok": True}).encode()
                    self.send_response(200)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                finally:
                    with far_end.lock:
                        far_end.running -= 1

            def log_message(self, *args: Any) -> None:
                pass

        class Server(ThreadingHTTPServer):
            daemon_threads = True

            def handle_error(self, request: Any, client_address: Any) -> None:
                pass  # a client that gave up (the worker timeout) leaves a broken pipe: expected here

        self.server = Server(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/slow"

    def in_flight(self) -> int:
        with self.lock:
            return self.running

    def close(self) -> None:
        self.gate.set()
        self.server.shutdown()
        self.server.server_close()


def call_then_shape(url: str) -> dict[str, Any]:
    """An HTTP step and a transform after it (which must not run when the step is cut short)."""
    return {"steps": [{"type": "http", "name": "call", "url": url, "body": {"n": "{{ input.n }}"},
                       "retry": {"attempts": 3, "backoff": 0.05}},
                      {"type": "transform", "name": "shape", "expression": "steps.call"}]}


def worker_env(url: str, queue: dict[str, str], **extra: str) -> dict[str, str]:
    """The environment of a worker process: this one's without AWS_ and FLOWBUILDER_ settings, moto's
    endpoint, the database URL, short polls and leases."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "FLOWBUILDER_", "ECS_"))}
    env.update({k: v for k, v in queue.items() if k.startswith("AWS_")})
    env.update({"FLOWBUILDER_QUEUE_URL": queue["queue_url"], "FLOWBUILDER_HTTP_ALLOWLIST": "127.0.0.1/32",
                "FLOWBUILDER_POLL_WAIT": "1", "FLOWBUILDER_LEASE_SECONDS": "10",
                "FLOWBUILDER_VISIBILITY_SECONDS": "3", "PYTHONUNBUFFERED": "1", **extra})
    if url:
        env["FLOWBUILDER_DATABASE_URL"] = url
    return env


def start_worker(env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "flowbuilder.runtime.worker"], env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


def set_rows(factory: Any, ids: list[str], **values: Any) -> None:
    """Set columns of executions directly (age them, finish them) to put a test where it needs to start."""
    with factory.begin() as session:
        session.execute(update(Execution).where(Execution.id.in_(ids)).values(**values))


def utc(moment: datetime) -> datetime:
    """A stored timestamp in UTC: PostgreSQL answers in the session's zone, SQLite without one (UTC)."""
    return moment.astimezone(UTC) if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def wait_until(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"no {what} within {timeout} s"
        time.sleep(0.1)
