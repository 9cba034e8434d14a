"""Runtime fixtures: a real PostgreSQL (URL from FLOWBUILDER_TEST_POSTGRES_URL, which .ci/run sets after
starting the machine's server) and SQLite, SQS on moto's server over HTTP, and a local HTTP sink that
counts Idempotency-Keys."""

from __future__ import annotations

import json
import threading
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import boto3
import pytest

from conftest import fresh_postgres_url, json_server
from flowbuilder.runtime import executions
from flowbuilder.runtime.db.models import Workflow
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
