"""Real worker processes (python -m flowbuilder.runtime.worker), SQS on moto over HTTP, both modes; the
scheduler handler; the contract between the compiled stacks and the runtime."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import boto3
from sqlalchemy import select, update

from conftest import fresh_postgres_url
from flowbuilder.compiler import contract
from flowbuilder.runtime import executions, scheduler
from flowbuilder.runtime.config import Settings
from flowbuilder.runtime.db.models import Execution, now
from flowbuilder.runtime.db.session import engine
from flowbuilder.runtime.queue import Queue

from .conftest import Sink, seed, two_steps


def _setup(url: str, sink: Sink, count: int) -> tuple[Any, list[str]]:
    return seed(url, two_steps(sink.url), count)


def _env(url: str, sqs_queue: dict[str, str], **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "FLOWBUILDER_"))}
    env.update({k: v for k, v in sqs_queue.items() if k.startswith("AWS_")})
    env.update({"FLOWBUILDER_DATABASE_URL": url, "FLOWBUILDER_QUEUE_URL": sqs_queue["queue_url"],
                "FLOWBUILDER_HTTP_ALLOWLIST": "127.0.0.1/32", "FLOWBUILDER_POLL_WAIT": "1",
                "FLOWBUILDER_LEASE_SECONDS": "10", "FLOWBUILDER_VISIBILITY_SECONDS": "3", **extra})
    return env


def _worker(env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "flowbuilder.runtime.worker"], env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


def _states(factory: Any, ids: list[str]) -> list[str]:
    with factory() as session:
        return [session.get(Execution, i).state for i in ids]


def test_once_mode_runs_the_execution_named_by_the_pipe(database_url: str, sqs_queue: dict[str, str],
                                                        sink: Sink) -> None:
    factory, (execution_id,) = _setup(database_url, sink, 1)
    env = _env(database_url, sqs_queue, FLOWBUILDER_WORKER_MODE="once", FLOWBUILDER_EXECUTION_ID=execution_id)
    proc = subprocess.run([sys.executable, "-m", "flowbuilder.runtime.worker"], env=env, capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert _states(factory, [execution_id]) == ["succeeded"]
    assert sink.keys == {f"{execution_id}:call": 1}
    poison = subprocess.run([sys.executable, "-m", "flowbuilder.runtime.worker"],
                            env={**env, "FLOWBUILDER_EXECUTION_ID": "not-an-execution"}, capture_output=True,
                            text=True, timeout=120)
    assert poison.returncode == 1


def test_poll_mode_drains_the_queue_and_stops_on_sigterm(database_url: str, sqs_queue: dict[str, str],
                                                         sink: Sink) -> None:
    factory, ids = _setup(database_url, sink, 12)
    queue = Queue(sqs_queue["queue_url"], _sqs(sqs_queue))
    for execution_id in ids:
        executions.send(factory, queue, execution_id)
    worker = _worker(_env(database_url, sqs_queue, FLOWBUILDER_WORKER_CONCURRENCY="4"))
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline and set(_states(factory, ids)) != {"succeeded"}:
        time.sleep(0.5)
    worker.send_signal(signal.SIGTERM)
    output, _ = worker.communicate(timeout=60)
    assert worker.returncode == 0, output
    assert _states(factory, ids) == ["succeeded"] * 12
    assert sorted(sink.keys.values()) == [1] * 12  # every step exactly once
    left = _sqs(sqs_queue).get_queue_attributes(QueueUrl=sqs_queue["queue_url"], AttributeNames=["All"])
    assert left["Attributes"]["ApproximateNumberOfMessages"] == "0"
    assert left["Attributes"]["ApproximateNumberOfMessagesNotVisible"] == "0"


def test_poison_message_reaches_the_dead_letter_queue(database_url: str, sqs_queue: dict[str, str],
                                                      sink: Sink) -> None:
    _setup(database_url, sink, 0)
    sqs = _sqs(sqs_queue)
    sqs.send_message(QueueUrl=sqs_queue["queue_url"], MessageBody="no-such-execution")
    worker = _worker(_env(database_url, sqs_queue))
    deadline = time.monotonic() + 60  # visibility 5s, maxReceiveCount 3
    moved: list[Any] = []
    while time.monotonic() < deadline and not moved:
        moved = sqs.receive_message(QueueUrl=sqs_queue["dlq_url"], WaitTimeSeconds=2).get("Messages", [])
    worker.send_signal(signal.SIGTERM)
    worker.communicate(timeout=60)
    assert [m["Body"] for m in moved] == ["no-such-execution"]


def _sqs(sqs_queue: dict[str, str]) -> Any:
    return boto3.client("sqs", region_name="us-east-1", endpoint_url=sqs_queue["AWS_ENDPOINT_URL"],
                        aws_access_key_id="testing", aws_secret_access_key="testing")


def test_scheduler_creates_once_per_scheduled_time_and_sweeps(database_url: str, sqs_queue: dict[str, str],
                                                              sink: Sink, monkeypatch: Any) -> None:
    factory, (stale,) = _setup(database_url, sink, 1)
    for key, value in sqs_queue.items():
        if key.startswith("AWS_"):
            monkeypatch.setenv(key, value)
    settings = Settings(database_url=database_url, queue_url=sqs_queue["queue_url"])
    event = {"type": contract.SCHEDULE_EVENT, "schedule": "nightly", "workflow": "wf", "input": {"n": 3},
             "scheduledTime": "2026-11-28T03:00:00Z"}
    first, second = scheduler.handle(event, settings), scheduler.handle(event, settings)
    assert first["created"] is True and second == {"execution": first["execution"], "created": False}
    with factory.begin() as session:
        session.execute(update(Execution).where(Execution.id == stale).values(
            state="running", lease_owner="dead", lease_expires_at=now() - timedelta(seconds=5),
            enqueued_at=now()))
    assert scheduler.handle({"type": contract.SWEEP_EVENT}, settings) == {"swept": 1}
    bodies = [m["Body"] for m in _sqs(sqs_queue).receive_message(
        QueueUrl=sqs_queue["queue_url"], MaxNumberOfMessages=10, WaitTimeSeconds=1).get("Messages", [])]
    assert sorted(bodies) == sorted([first["execution"], stale])
    with factory() as session:
        assert session.scalar(select(Execution.idempotency_key).where(Execution.id == first["execution"])) == (
            "schedule:nightly:2026-11-28T03:00:00Z")


def test_a_warm_scheduler_migrates_a_database_recreated_behind_it(database_url: str, sqs_queue: dict[str, str],
                                                                   monkeypatch: Any) -> None:
    """The scheduler checks the migration once per process (a warm invocation skips it): a database re-created
    or restored while the instance stays warm is migrated again on the first missing table, not an error on
    every invocation until Lambda retires the instance."""
    for key, value in sqs_queue.items():
        if key.startswith("AWS_"):
            monkeypatch.setenv(key, value)
    monkeypatch.setenv("FLOWBUILDER_DATABASE_URL", database_url)
    monkeypatch.setenv("FLOWBUILDER_QUEUE_URL", sqs_queue["queue_url"])
    monkeypatch.setattr(scheduler, "_migrated", set())
    sweep = {"type": contract.SWEEP_EVENT}
    assert scheduler.handler(sweep) == {"swept": 0}
    engine(database_url).dispose()  # the scheduler's pool: its connections hold the old file open
    if database_url.startswith("sqlite"):
        for suffix in ("", "-wal", "-shm"):  # a -wal file left behind would be replayed into the new file
            Path(database_url.split("///", 1)[1] + suffix).unlink(missing_ok=True)
    else:
        assert fresh_postgres_url() == database_url  # the same database, its schema emptied
    assert scheduler.handler(sweep) == {"swept": 0}
    assert scheduler.handler(sweep) == {"swept": 0}


def test_contract_between_compiler_and_runtime() -> None:
    """Both sides import one contract (runtime/contract.py): every variable the compiler sets and every tuning
    variable is read by Settings, and every entry point it names exists."""
    import importlib
    import inspect

    from flowbuilder.runtime import config
    from flowbuilder.runtime import contract as runtime_contract

    assert contract.SET is runtime_contract.SET and contract.COMMANDS is runtime_contract.COMMANDS
    names = {k for k, v in vars(runtime_contract).items()
             if k.isupper() and isinstance(v, str) and k not in ("PREFIX", "SECRET_REF_PREFIX")
             and not k.endswith("_EVENT")}
    source = inspect.getsource(config)
    assert names and sorted(n for n in names if f"c.{n}" not in source) == []
    assert set(runtime_contract.SET) <= {getattr(runtime_contract, n) for n in names}
    for command in contract.COMMANDS.values():
        assert command[:2] == ["python", "-m"]
        assert importlib.util.find_spec(f"{command[2]}.__main__") is not None
    for handler in contract.LAMBDA_HANDLERS.values():
        module, _, function = handler.rpartition(".")
        assert callable(getattr(importlib.import_module(module), function))
    assert contract.SCHEDULE_EVENT == "schedule" and contract.SWEEP_EVENT == "sweep"
    assert scheduler.handle.__module__ == "flowbuilder.runtime.scheduler"


def test_scheduler_handler_imports_no_web_framework() -> None:
    code = ("import sys, flowbuilder.runtime.scheduler\n"
            "print(','.join(m for m in sys.modules if m.split('.')[0] in ('fastapi','starlette','uvicorn','mangum')))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert proc.stdout.strip() == ""


def test_api_keys_come_from_the_specs_runtime_secret(monkeypatch: Any) -> None:
    """flowbuilder.yaml's runtime.secrets.API_KEYS reaches the container as API_KEYS (FLOWBUILDER_ is the
    compiler's), so that is where the API looks when FLOWBUILDER_API_KEYS is not set."""
    from conftest import REPO
    from flowbuilder.compiler.validate import validate_file

    app = validate_file(REPO / "flowbuilder.yaml").app
    assert app is not None and "API_KEYS" in app.spec.runtime.secrets
    monkeypatch.delenv("FLOWBUILDER_API_KEYS", raising=False)
    monkeypatch.setenv("API_KEYS", "k1, k2")
    assert Settings.from_env().api_keys == ("k1", "k2")
    monkeypatch.setenv("FLOWBUILDER_API_KEYS", "local")
    assert Settings.from_env().api_keys == ("local",)
