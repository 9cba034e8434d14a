"""fbc logs against moto's server over HTTP (CloudWatch Logs): the stack's log groups, found through its
resources and the build's manifest, interleaved by time after their source's name; one source, a filter
pattern, JSON lines; follow mode's polling (each event once, a late one too) and its clean Ctrl-C (exit 130)."""

from __future__ import annotations

import contextlib
import json
import signal
import time
from pathlib import Path

import boto3
import pytest
from deploy_fakes import start
from test_deploy import MINIMAL, clean_moto, client, deployed_minimal, invoke

from flowbuilder.compiler.build import compile_spec
from flowbuilder.compiler.deploy import logs
from flowbuilder.compiler.deploy.aws import Aws, Clock
from flowbuilder.compiler.deploy.status import deployed

SPEC = ["-f", str(MINIMAL)]


@pytest.fixture
def env(moto_server: str, tmp_path: Path) -> dict[str, str]:
    return deployed_minimal(moto_server, tmp_path)


fbc = invoke


def groups(env: dict[str, str]) -> dict[str, str]:
    cfn = client(env, "cloudformation")
    return {r["LogicalResourceId"]: r["PhysicalResourceId"]
            for r in cfn.list_stack_resources(StackName="tiny-dev")["StackResourceSummaries"]
            if r["ResourceType"] == "AWS::Logs::LogGroup"}


def put(env: dict[str, str], group: str, stream: str, *events: tuple[int, str]) -> None:
    cw = client(env, "logs")
    with contextlib.suppress(cw.exceptions.ResourceAlreadyExistsException):
        cw.create_log_stream(logGroupName=group, logStreamName=stream)
    cw.put_log_events(logGroupName=group, logStreamName=stream,
                      logEvents=[{"timestamp": at, "message": text} for at, text in events])


def text(line: str) -> str:
    """What follows `source | time `."""
    return line.split(" | ", 1)[1].split(" ", 1)[1]


def now_ms() -> int:
    return int(time.time() * 1000)


def test_logs_interleave_every_group_by_time(env: dict[str, str]) -> None:
    found = groups(env)
    assert sorted(found) == ["SchedulerLogGroup", "WorkerLogGroup"]
    t = now_ms() - 60_000
    put(env, found["WorkerLogGroup"], "worker/worker/1", (t, "claimed e-1"), (t + 2000, "ERROR step failed\nTraceback"))
    put(env, found["SchedulerLogGroup"], "2026/11/28/[$LATEST]abc", (t + 1000, "schedule nightly: e-1 created"))
    put(env, found["WorkerLogGroup"], "worker/worker/1", (t - 3_600_000, "two hours ago"))

    shown = fbc(env, "logs", *SPEC, "--since", "1h")
    assert shown.exit_code == 0, shown.output
    lines = shown.stdout.splitlines()
    assert [line.split(" | ")[0] for line in lines] == ["worker   ", "scheduler", "worker   ", "worker   "]
    assert [text(line) for line in lines] == [
        "claimed e-1", "schedule nightly: e-1 created", "ERROR step failed", "Traceback"]  # a line each, prefixed

    scheduler = fbc(env, "logs", "scheduler", *SPEC, "--since", "1h")
    assert [text(line) for line in scheduler.stdout.splitlines()] == ["schedule nightly: e-1 created"]
    errors = fbc(env, "logs", "worker", *SPEC, "--since", "3h", "--filter", "ERROR", "--format", "json")
    objects = [json.loads(line) for line in errors.stdout.splitlines()]
    assert [(o["source"], o["message"], o["logGroup"]) for o in objects] == [
        ("worker", "ERROR step failed\nTraceback", found["WorkerLogGroup"])]
    assert objects[0]["time"].endswith("Z") and objects[0]["timestamp"] == t + 2000
    unknown = fbc(env, "logs", "api", *SPEC)
    assert unknown.exit_code == 2
    assert "fbc: 'api' has no logs in tiny-dev: choose one of scheduler, worker" in unknown.stderr


def test_logs_of_a_stack_not_deployed(moto_server: str, tmp_path: Path) -> None:
    shown = fbc(clean_moto(moto_server, tmp_path), "logs", *SPEC)
    assert (shown.exit_code, shown.stderr) == (1, "fbc: tiny-dev: not deployed\n")


def test_follow_shows_each_event_once_and_late_ones_too(env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    found = groups(env)
    worker, scheduler = found["WorkerLogGroup"], found["SchedulerLogGroup"]
    t = now_ms() - 10_000
    put(env, worker, "w/1", (t, "first"))
    shown: list[str] = []
    polls: list[float] = []

    def poll(seconds: float) -> None:  # what arrives while fbc waits between polls
        polls.append(seconds)
        if len(polls) == 1:
            put(env, scheduler, "s/1", (t + 5000, "newer"))
        elif len(polls) == 2:
            put(env, worker, "w/2", (t + 1000, "ingested late"))  # older than "newer", within LATE_SECONDS
        else:
            raise KeyboardInterrupt  # Ctrl-C

    monkeypatch.setenv("AWS_ENDPOINT_URL", env["AWS_ENDPOINT_URL"])
    aws = Aws(boto3.Session(region_name="eu-west-1", aws_access_key_id="testing", aws_secret_access_key="testing"),
              Clock(poll_seconds=2, sleep=poll))
    compiled = compile_spec(MINIMAL, "ultra", "dev")
    chosen = logs.groups(deployed(aws, "tiny-dev", compiled.manifest), compiled.plan, None)
    with pytest.raises(KeyboardInterrupt):
        logs.follow(aws, chosen, t - 1000, None, lambda line: shown.append(f"{line.source}: {line.message}"),
                    shown.append)
    assert shown == ["worker: first", "scheduler: newer", "worker: ingested late"]
    assert polls == [2, 2, 2]


def test_follow_ends_cleanly_on_ctrl_c(env: dict[str, str]) -> None:
    put(env, groups(env)["WorkerLogGroup"], "w/1", (now_ms(), "hello"))
    proc, _ = start(env, "logs", *SPEC, "--follow", "--profile", "ultra")
    assert proc.stdout is not None and proc.stderr is not None
    first = proc.stdout.readline().decode()
    assert first.startswith("worker    | ") and first.endswith(" hello\n")
    proc.send_signal(signal.SIGINT)
    code = proc.wait(timeout=30)
    err = proc.stderr.read().decode()
    assert (code, err) == (130, "fbc: interrupted (SIGINT): nothing was changed in AWS\n")
    assert "Traceback" not in err + proc.stdout.read().decode()


