"""`fbc up` as a user runs it: a subprocess, driven over HTTP, stopped with SIGTERM, started again."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import httpx
import pytest

from conftest import FBC, REPO, free_port, fresh_postgres_url, json_server, run_fbc_process
from flowbuilder.compiler.build import plan_spec
from flowbuilder.compiler.local.workers import EMPTY_SECONDS, TICK, PollPool

SPEC = """\
apiVersion: flowbuilder.dev/v1alpha1
kind: App
metadata: {name: uptest}
spec:
  region: eu-west-1
  runtime: {image: 210987654321.dkr.ecr.eu-west-1.amazonaws.com/uptest-runtime:1.0.0}
  queues:
    jobs: {visibilityTimeout: 2m, deadLetter: {maxReceiveCount: 3}}
  services:
    api: {type: web, runtime: api, port: 8000, public: true, path: /api, healthCheck: /api/healthz}
    worker: {type: worker, runtime: worker, queue: jobs, timeout: 1m, concurrency: 2, scaling: {max: 3}}
    web: {type: web, image: 210987654321.dkr.ecr.eu-west-1.amazonaws.com/uptest-web:1.0.0, port: 3000}
  schedules:
    tick: {cron: "* * * * ? *", timezone: Europe/Berlin, workflow: tick, input: {source: schedule}}
"""


class Sink:
    """The far end of HTTP steps: records each request's Idempotency-Key; `delay` seconds per answer."""

    def __init__(self, delay: float = 0.0) -> None:
        self.keys: list[str] = []
        self.delay = delay
        self.started = threading.Event()
        self.server, base = json_server(self.respond)
        self.url = f"{base}/step"

    def respond(self, request: BaseHTTPRequestHandler, body: Any) -> tuple[int, Any]:
        self.keys.append(request.headers["Idempotency-Key"])
        self.started.set()
        time.sleep(self.delay)
        return 200, {"got": body}

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class Up:
    """A running `fbc up`: its output collected line by line, its API at `url`."""

    def __init__(self, cwd: Path, *args: str, port: int | None = None) -> None:
        self.port = port or free_port()
        env = {**os.environ, "FLOWBUILDER_HTTP_ALLOWLIST": "127.0.0.1/32", "NO_COLOR": "1"}
        self.process = subprocess.Popen([*FBC, "up", "--port", str(self.port), *args], cwd=cwd, env=env,
                                        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        self.lines: list[str] = []
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append(line.rstrip("\n"))

    @property
    def output(self) -> str:
        return "\n".join(self.lines)

    def wait_for(self, pattern: str, timeout: float = 60) -> re.Match[str]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for line in list(self.lines):
                if found := re.search(pattern, line):
                    return found
            if self.process.poll() is not None:
                self.reader.join(10)  # the last of its output
                found = re.search(pattern, self.output)
                if found:
                    return found
                raise AssertionError(f"fbc up exited {self.process.returncode} before {pattern!r}:\n{self.output}")
            time.sleep(0.1)
        raise AssertionError(f"no {pattern!r} within {timeout} s:\n{self.output}")

    def finish(self, timeout: float = 60) -> int:
        """Wait for the process and for the last of its output."""
        try:
            code = self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            raise AssertionError(f"fbc up did not stop within {timeout} s:\n{self.output}") from None
        self.reader.join(10)
        return code

    def stop(self, timeout: float = 60, signum: int = signal.SIGTERM) -> int:
        self.process.send_signal(signum)
        return self.finish(timeout)


@pytest.fixture
def app_dir(tmp_path: Path) -> Path:
    (tmp_path / "flowbuilder.yaml").write_text(SPEC)
    return tmp_path


@pytest.fixture
def started(app_dir: Path) -> Iterator[Callable[..., Up]]:
    running: list[Up] = []

    def start(*args: str) -> Up:
        up = Up(app_dir, *args)
        running.append(up)
        up.wait_for(r"Ctrl-C stops everything")
        return up

    yield start
    for up in running:
        if up.process.poll() is None:
            up.process.kill()


def client(app_dir: Path, up: Up, base: str) -> httpx.Client:
    key = (app_dir / ".flowbuilder" / "api-key").read_text().strip()
    return httpx.Client(base_url=f"http://127.0.0.1:{up.port}{base}", headers={"Authorization": f"Bearer {key}"},
                        timeout=30)


def create(api: httpx.Client, name: str, steps: list[dict[str, Any]]) -> str:
    response = api.post("/workflows", json={"name": name, "definition": {"steps": steps}})
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def execute(api: httpx.Client, workflow_id: str, data: dict[str, Any]) -> str:
    response = api.post(f"/workflows/{workflow_id}/executions", json={"input": data})
    assert response.status_code == 202, response.text
    return str(response.json()["id"])


def until(api: httpx.Client, execution_id: str, states: tuple[str, ...], timeout: float = 90) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        execution: dict[str, Any] = api.get(f"/executions/{execution_id}").json()
        if execution["state"] in states:
            return execution
        assert time.monotonic() < deadline, f"execution still {execution['state']}"
        time.sleep(0.2)


def http_then_transform(url: str) -> list[dict[str, Any]]:
    return [{"type": "http", "name": "call", "url": url, "body": {"n": "{{ input.n }}"}},
            {"type": "transform", "name": "result", "expression": "{n: steps.call.got.n}"}]


@pytest.mark.parametrize("profile", ["standard", "ultra"])
def test_up_runs_executions_through_the_profiles_workers(app_dir: Path, started: Callable[..., Up],
                                                         profile: str) -> None:
    sink = Sink()
    try:
        up = started("--profile", profile)
        assert "web: not run locally (its own image" in up.output
        with client(app_dir, up, "/api") as api:
            assert api.get("/workflows").status_code == 200
            assert api.get("/workflows", headers={"Authorization": "Bearer wrong"}).status_code == 401
            workflow = create(api, "calls", http_then_transform(sink.url))
            ids = [execute(api, workflow, {"n": n}) for n in range(5)]
            for n, execution_id in enumerate(ids):
                execution = until(api, execution_id, ("succeeded", "failed"))
                assert execution["state"] == "succeeded", execution
                assert execution["output"] == {"n": n}
        assert sorted(sink.keys) == sorted(f"{i}:call" for i in ids)  # each step's request once
        if profile == "standard":  # a pool that started at zero and grew on the backlog
            up.wait_for(r"worker\s+\| scaling 0 -> [1-3] \(\d+ visible")
            assert "FLOWBUILDER_WORKER_MODE" not in up.output
            assert len(set(re.findall(r"^(worker#\d+)\s", up.output, re.M))) <= 3
        else:  # one process per message, each exiting after its execution (or refused, and drained by another)
            processes = set(re.findall(r"^(worker#\d+)\s+\| ", up.output, re.M))
            assert len(processes) == 5
        assert up.stop() == 0
        assert up.output.rstrip().endswith("stopped")
    finally:
        sink.close()


def test_a_schedule_fires_through_the_scheduler_handler(app_dir: Path, started: Callable[..., Up]) -> None:
    """The whole path of a firing: Scheduler -> handler process -> execution -> worker. The workflow is stored
    before `fbc up` starts and the schedule is a rate, whose first firing is at start, so nothing waits for a
    wall-clock minute (when a cron fires is tests/test_up_cron.py's, on an injected clock)."""
    from flowbuilder.runtime.db.models import Workflow
    from flowbuilder.runtime.db.session import migrate, sessions

    url = f"sqlite:///{app_dir / 'seeded.sqlite3'}"
    migrate(url)
    with sessions(url).begin() as session:
        session.add(Workflow(name="tick", version=1,
                             definition={"steps": [{"type": "transform", "name": "echo", "expression": "input"}]}))
    spec = app_dir / "flowbuilder.yaml"
    spec.write_text(spec.read_text().replace('cron: "* * * * ? *"', 'rate: "1 minute"'))
    up = started("--profile", "standard", "--database-url", url)
    with client(app_dir, up, "/api") as api:
        deadline = time.monotonic() + 60
        while True:
            found = api.get("/executions", params={"state": "succeeded"}).json()
            if found["total"]:
                break
            assert time.monotonic() < deadline, up.output
            time.sleep(0.5)
        assert found["items"][0]["output"] == {"source": "schedule"}
    assert re.search(r"^scheduler\s+\| .*flowbuilder.scheduler .*\"event\": \"schedule\"", up.output, re.M), up.output
    assert up.stop() == 0


@pytest.mark.parametrize(("profile", "database"), [("standard", "sqlite"), ("ultra", "postgresql")])
def test_sigterm_mid_execution_then_restart_completes_it(app_dir: Path, started: Callable[..., Up],
                                                        profile: str, database: str) -> None:
    sink = Sink(delay=3)
    options = ["--profile", profile]
    if database == "postgresql":
        options += ["--database-url", fresh_postgres_url()]
    try:
        up = started(*options)
        with client(app_dir, up, "/api") as api:
            workflow = create(api, "slow", [*http_then_transform(sink.url),
                                            {"type": "http", "name": "again", "url": sink.url, "body": {"n": 2}}])
            execution_id = execute(api, workflow, {"n": 1})
            assert sink.started.wait(60), up.output
            assert up.stop() == 0  # the running step finishes, the execution is released
            sink.delay = 0
        up = started(*options)
        assert "1 unfinished execution(s) sent again" in up.output
        with client(app_dir, up, "/api") as api:
            execution = until(api, execution_id, ("succeeded", "failed"))
        assert execution["state"] == "succeeded", execution
        assert [s["step"] for s in execution["steps"]] == ["call", "result", "again"]
        # the step that was running at SIGTERM finished then and was not repeated after the restart
        assert sink.keys == [f"{execution_id}:call", f"{execution_id}:again"]
        assert up.stop() == 0
    finally:
        sink.close()


@pytest.mark.parametrize("profile", ["standard", "ultra"])
def test_smoke_on_the_repository_spec(profile: str) -> None:
    done = run_fbc_process("up", "--smoke", "--profile", profile, "--port", str(free_port()), cwd=REPO, timeout=180)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "smoke: passed" in done.stdout
    assert "output {'message': 'hello from fbc up'}" in done.stdout
    assert re.search(r"database: sqlite:///\S*/fbc-smoke-\w+/flow-builder-dev.sqlite3 migrated", done.stdout)


def test_a_second_fbc_up_in_the_same_directory_is_refused(app_dir: Path, started: Callable[..., Up]) -> None:
    up = started()
    second = Up(app_dir)
    assert second.finish() == 2
    assert re.search(r"^fbc: fbc up is already running for .*\.flowbuilder \(stop it first\)$", second.output, re.M)
    assert up.stop(signum=signal.SIGINT) == 0  # Ctrl-C: the same orderly stop
    assert up.output.rstrip().endswith("stopped")


def test_a_busy_port_is_one_line(app_dir: Path) -> None:
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        up = Up(app_dir, port=taken.getsockname()[1])
        assert up.finish() == 2
    assert up.lines == [f"fbc: port {up.port} on 127.0.0.1 is in use: pass --port"]


def test_an_unreachable_database_is_one_line(app_dir: Path) -> None:
    up = Up(app_dir, "--database-url", f"postgresql://someone:hunter2@127.0.0.1:{free_port()}/nothing")
    assert up.finish() == 2
    errors = [line for line in up.lines if line.startswith("fbc: ")]
    assert len(errors) == 1 and "database postgresql+psycopg://someone:***@127.0.0.1" in errors[0], up.output
    assert "hunter2" not in up.output and "Traceback" not in up.output


def test_smoke_without_an_api_is_refused_before_starting() -> None:
    done = run_fbc_process("up", "--smoke", "-f", str(REPO / "tests" / "specs" / "minimal.yaml"))
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr == "fbc: --smoke needs a service with runtime: api and one with runtime: worker\n"


def test_an_invalid_spec_is_located(app_dir: Path) -> None:
    (app_dir / "flowbuilder.yaml").write_text(SPEC.replace("queue: jobs", "queue: job"))
    up = Up(app_dir)
    assert up.finish() == 1
    assert re.search(r"flowbuilder.yaml:\d+:\d+: spec.services.worker.queue: ", up.output), up.output


def test_the_pool_follows_the_alarm_rules() -> None:
    plan = plan_spec(REPO / "tests" / "specs" / "full.yaml", "standard", "prod")
    worker = next(w for w in plan.workers if w.scaling_max >= 4)
    pool = PollPool(worker, "", None, None, None)  # type: ignore[arg-type]
    assert pool.desired == worker.scaling_min
    assert pool.decide(1, 0, 0.0) == max(1, worker.scaling_min)  # the first step
    assert pool.decide(10_000, 0, 1.0) == worker.scaling_max  # the last step
    pool.desired = 3
    assert pool.decide(0, 4, 2.0) == 3  # in flight: neither alarm acts
    assert pool.decide(0, 0, 3.0) == 3  # empty, but not for long enough
    assert pool.decide(0, 0, 3.0 + EMPTY_SECONDS) == worker.scaling_min


class GatedSink:
    """The far end of HTTP steps: the first `hold` requests wait until `gate` is set, later ones answer at
    once; counts requests in flight and the most at once."""

    def __init__(self, hold: int) -> None:
        self.hold, self.gate, self.lock = hold, threading.Event(), threading.Lock()
        self.keys: list[str] = []
        self.running = self.peak = 0
        self.server, base = json_server(self.respond)
        self.url = f"{base}/step"

    def respond(self, request: BaseHTTPRequestHandler, body: Any) -> tuple[int, Any]:
        with self.lock:
            self.keys.append(request.headers["Idempotency-Key"])
            held = len(self.keys) <= self.hold
            self.running += 1
            self.peak = max(self.peak, self.running)
        try:
            if held:
                self.gate.wait(60)
            return 200, {"got": body}
        finally:
            with self.lock:
                self.running -= 1

    def in_flight(self) -> int:
        with self.lock:
            return self.running

    def close(self) -> None:
        self.gate.set()
        self.server.shutdown()
        self.server.server_close()


def _wait(condition: Callable[[], bool], timeout: float, up: Up) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, up.output
        time.sleep(0.1)


def test_scale_in_never_stops_a_process_running_an_execution(app_dir: Path, started: Callable[..., Up]) -> None:
    """concurrency 1, max 2: more than 10 visible messages start two processes; once each holds one (10 left
    visible) the backlog step wants one. The newest is protected while its execution runs, so it is kept."""
    (app_dir / "flowbuilder.yaml").write_text(SPEC.replace("concurrency: 2, scaling: {max: 3}",
                                                           "concurrency: 1, scaling: {max: 2}"))
    sink = GatedSink(hold=2)
    try:
        up = started("--profile", "standard")
        with client(app_dir, up, "/api") as api:
            workflow = create(api, "calls", http_then_transform(sink.url))
            ids = [execute(api, workflow, {"n": n}) for n in range(12)]
            up.wait_for(r"worker\s+\| scaling 0 -> 2 ")
            _wait(lambda: sink.in_flight() == 2, 60, up)  # each process holds one execution
            up.wait_for(r"worker\s+\| scaling 2 -> 1 ")
            up.wait_for(r"worker\s+\| scale-in: worker#2 protected \(running an execution\), kept until idle")
            time.sleep(2 * TICK)  # ticks that would have stopped it
            assert not re.search(r"^worker#2\s+\| .*signal 15", up.output, re.M), up.output
            held = [key.split(":")[0] for key in sink.keys[:2]]
            sink.gate.set()
            for execution_id in ids:
                execution = until(api, execution_id, ("succeeded", "failed"))
                assert execution["state"] == "succeeded", execution
            for execution_id in held:  # ran once, by the process that took it, never released
                assert api.get(f"/executions/{execution_id}").json()["attempts"] == 1
        assert sorted(sink.keys) == sorted(f"{i}:call" for i in ids)
        assert ": released" not in up.output
        assert up.stop() == 0
    finally:
        sink.close()


def test_the_pipe_starts_a_process_per_message_and_the_runtime_bounds_executions(
        app_dir: Path, started: Callable[..., Up]) -> None:
    """ultra: six messages start six processes, as Pipes does; the spec's max (3) runs, the other three are
    refused and exit, and the three running drain them."""
    sink = GatedSink(hold=3)
    try:
        up = started("--profile", "ultra")
        assert "worker: one process per message, at most 3 executions at once (jobs)" in up.output
        with client(app_dir, up, "/api") as api:
            workflow = create(api, "calls", http_then_transform(sink.url))
            ids = [execute(api, workflow, {"n": n}) for n in range(6)]
            _wait(lambda: sink.in_flight() == 3 and len(re.findall(r": deferred \(3 executions running", up.output))
                  == 3, 90, up)
            time.sleep(0.5)
            assert sink.in_flight() == 3
            sink.gate.set()
            for execution_id in ids:
                execution = until(api, execution_id, ("succeeded", "failed"))
                assert execution["state"] == "succeeded" and execution["attempts"] == 1, execution
        assert sink.peak == 3
        assert sorted(sink.keys) == sorted(f"{i}:call" for i in ids)
        up.wait_for(r"^worker#6\s+\| ")
        assert len(set(re.findall(r"^(worker#\d+)\s+\| ", up.output, re.M))) == 6
        assert len(re.findall(r"\(drained from the queue\)", up.output)) == 3
        assert up.stop() == 0
    finally:
        sink.close()
