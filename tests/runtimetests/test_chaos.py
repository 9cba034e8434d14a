"""Chaos: 200 executions of a two-step workflow through real worker processes while a driver kills workers
at random with SIGKILL and SIGTERM, in both modes. Afterwards every execution has succeeded, no completed
step ran twice at the far end (the sink honours Idempotency-Keys and counts first effects), nothing is left
in flight, and (poll mode) a poison message sits in the dead-letter queue.

The driver plays AWS's part: in once mode it is the Pipe (receive, delete, start one task per message), and
in both modes it calls the sweeper every two seconds, as the sweeper schedule does.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from typing import Any

import pytest
from sqlalchemy import func, select

from conftest import fresh_postgres_url, json_server
from flowbuilder.runtime import executions
from flowbuilder.runtime.db.models import Execution, StepRun
from flowbuilder.runtime.queue import Queue

from .conftest import queue_with_dead_letters, seed, sqs_client, two_steps

EXECUTIONS = 200
DEADLINE = 300  # seconds; a healthy run takes well under a minute per mode


class IdempotentSink:
    """Does each Idempotency-Key's work once; a repeated key gets the first answer back (as payment APIs do)."""

    def __init__(self) -> None:
        self.effects: Counter[str] = Counter()
        self.replays: Counter[str] = Counter()
        self.answers: dict[str, Any] = {}
        self.lock = threading.Lock()
        self.server, self.url = json_server(self.respond)

    def respond(self, request: BaseHTTPRequestHandler, body: Any) -> tuple[int, Any]:
        key = request.headers.get("Idempotency-Key", "")
        time.sleep(random.uniform(0, 0.05))  # room for a kill between request and record
        with self.lock:
            if key in self.answers:
                self.replays[key] += 1
            else:
                self.effects[key] += 1
                self.answers[key] = {"echo": body, "path": "/hook"}
            return 200, self.answers[key]


@pytest.fixture
def chaos_env(moto_server: str, tmp_path: Any, request: pytest.FixtureRequest) -> Iterator[dict[str, Any]]:
    url = request.param if request.param != "postgresql" else fresh_postgres_url()
    if url == "sqlite":
        url = f"sqlite:///{tmp_path / 'chaos.db'}"
    sqs = sqs_client(moto_server)
    queue, dlq = queue_with_dead_letters(sqs, "chaos", visibility=3, max_receive=5)
    sink = IdempotentSink()
    factory, ids = seed(url, two_steps(sink.url), EXECUTIONS, name="chaos")
    os.environ["FLOWBUILDER_SWEEP_QUEUED_AFTER"] = "45"  # the driver's sweeps, in this process
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "FLOWBUILDER_"))}
    env.update({"AWS_ENDPOINT_URL": moto_server, "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                "AWS_DEFAULT_REGION": "us-east-1", "FLOWBUILDER_DATABASE_URL": url, "FLOWBUILDER_QUEUE_URL": queue,
                "FLOWBUILDER_HTTP_ALLOWLIST": "127.0.0.1/32", "FLOWBUILDER_POLL_WAIT": "1",
                "FLOWBUILDER_LEASE_SECONDS": "4", "FLOWBUILDER_SWEEP_QUEUED_AFTER": "45",
                "FLOWBUILDER_VISIBILITY_SECONDS": "6"})
    yield {"factory": factory, "ids": ids, "sqs": sqs, "queue": queue, "dlq": dlq, "sink": sink, "env": env}
    os.environ.pop("FLOWBUILDER_SWEEP_QUEUED_AFTER", None)
    sink.server.shutdown()


def _succeeded(factory: Any) -> int:
    with factory() as session:
        return int(session.scalar(select(func.count()).where(Execution.state == "succeeded")) or 0)


def _depth(sqs: Any, queue: str) -> tuple[int, int]:
    attrs = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["All"])["Attributes"]
    return int(attrs["ApproximateNumberOfMessages"]), int(attrs["ApproximateNumberOfMessagesNotVisible"])


def _kill_one(processes: list[subprocess.Popen[bytes]], kills: Counter[str]) -> None:
    alive = [p for p in processes if p.poll() is None]
    if alive:
        victim = random.choice(alive)
        # Alternate, so both kinds of death happen in every run.
        sig = signal.SIGKILL if sum(kills.values()) % 2 == 0 else signal.SIGTERM
        victim.send_signal(sig)
        kills[sig.name] += 1


def _check(ctx: dict[str, Any], kills: Counter[str]) -> None:
    factory, sink = ctx["factory"], ctx["sink"]
    assert _succeeded(factory) == EXECUTIONS
    assert len(sink.effects) == EXECUTIONS and set(sink.effects.values()) == {1}  # each step's work done once
    with factory() as session:
        rows = session.scalar(select(func.count()).select_from(StepRun))
        assert rows == 2 * EXECUTIONS  # one row per execution and step: none recorded twice
        assert session.scalar(select(func.count()).where(Execution.lease_owner.is_not(None))) == 0
    assert kills["SIGKILL"] > 0 and kills["SIGTERM"] > 0


@pytest.mark.parametrize("chaos_env", ["postgresql", "sqlite"], indirect=True)
def test_poll_mode_survives_random_kills(chaos_env: dict[str, Any]) -> None:
    ctx = chaos_env
    queue = Queue(ctx["queue"], ctx["sqs"])
    for execution_id in ctx["ids"]:
        executions.send(ctx["factory"], queue, execution_id)
    ctx["sqs"].send_message(QueueUrl=ctx["queue"], MessageBody="poison-not-an-execution")
    env = {**ctx["env"], "FLOWBUILDER_WORKER_MODE": "poll", "FLOWBUILDER_WORKER_CONCURRENCY": "4"}
    start = lambda: subprocess.Popen([sys.executable, "-m", "flowbuilder.runtime.worker"], env=env,  # noqa: E731
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    workers = [start() for _ in range(3)]
    kills: Counter[str] = Counter()
    deadline, last_sweep = time.monotonic() + DEADLINE, 0.0
    while time.monotonic() < deadline:
        done = _succeeded(ctx["factory"])
        if done == EXECUTIONS and _depth(ctx["sqs"], ctx["queue"]) == (0, 0):
            break
        if done < EXECUTIONS * 0.9 and random.random() < 0.5:
            _kill_one(workers, kills)
        workers = [w for w in workers if w.poll() is None]
        workers += [start() for _ in range(3 - len(workers))]
        if time.monotonic() - last_sweep > 2:
            executions.sweep(ctx["factory"], queue)
            last_sweep = time.monotonic()
        time.sleep(0.4)
    for worker in workers:
        worker.send_signal(signal.SIGTERM)
    for worker in workers:
        worker.wait(timeout=60)
    _check(ctx, kills)
    assert _depth(ctx["sqs"], ctx["queue"]) == (0, 0)
    dead = ctx["sqs"].receive_message(QueueUrl=ctx["dlq"], MaxNumberOfMessages=10, WaitTimeSeconds=1)
    assert [m["Body"] for m in dead.get("Messages", [])] == ["poison-not-an-execution"]


@pytest.mark.parametrize("chaos_env", ["postgresql", "sqlite"], indirect=True)
def test_once_mode_survives_random_kills(chaos_env: dict[str, Any]) -> None:
    """Pipes deletes a message once its task starts: an interrupted task is recovered by the lease and the
    sweeper (SIGKILL) or re-enqueues itself (SIGTERM, the Spot warning); refused and drained claims race
    with the kills."""
    ctx = chaos_env
    queue = Queue(ctx["queue"], ctx["sqs"])
    for execution_id in ctx["ids"]:
        executions.send(ctx["factory"], queue, execution_id)
    # As ultra runs it: at most 3 executions at once (the driver starts up to 4 tasks), admitted tasks drain.
    env = {**ctx["env"], "FLOWBUILDER_WORKER_MODE": "once", "FLOWBUILDER_WORKER_MAX_RUNNING": "3"}
    tasks: list[subprocess.Popen[bytes]] = []
    kills: Counter[str] = Counter()
    deadline, last_sweep, last_kill, parallel = time.monotonic() + DEADLINE, 0.0, time.monotonic(), 4
    while time.monotonic() < deadline:
        tasks = [t for t in tasks if t.poll() is None]
        if _succeeded(ctx["factory"]) == EXECUTIONS and not tasks and _depth(ctx["sqs"], ctx["queue"]) == (0, 0):
            break
        if len(tasks) < parallel:
            for message in queue.receive(parallel - len(tasks), wait=0):
                queue.delete(message)  # what Pipes does once RunTask succeeds
                tasks.append(subprocess.Popen(
                    [sys.executable, "-m", "flowbuilder.runtime.worker"],
                    env={**env, "FLOWBUILDER_EXECUTION_ID": message.body},
                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        if _succeeded(ctx["factory"]) < EXECUTIONS * 0.9 and time.monotonic() - last_kill > random.uniform(1, 3):
            _kill_one(tasks, kills)  # about one task in ten: a kill every 2 seconds or so
            last_kill = time.monotonic()
        if time.monotonic() - last_sweep > 2:
            executions.sweep(ctx["factory"], queue)
            last_sweep = time.monotonic()
        time.sleep(0.05)
    for task in tasks:
        task.wait(timeout=60)
    _check(ctx, kills)
