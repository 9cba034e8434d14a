"""Recovery times (issue 12, item 12), measured with shortened settings on SQLite and PostgreSQL.

Each path of README's recovery table is provoked with real worker processes (`python -m
flowbuilder.runtime.worker`, SQS on moto) where it needs one, and the time until a live worker claims the
execution again is measured and held to the bound the settings give: the same sum as the table's, with the
shortened values (lease 3 s, visibility 3 s, poll wait 1 s, a sweep every 0.5 s run by the test as the
schedule would, queued-after 3 s in once mode and derived, visibility + poll wait, in poll mode), plus what a
worker process takes to start on this machine and a little slack. The test plays the Pipe in once mode
(receive, delete, start one task per message). `pytest -s` prints the figures as a table.

The sweeper's rules themselves (the derived queued-after, the once-mode cap at free slots, expired leases
before a backlog) are checked without processes in test_sweeper_rules.py.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, update

from flowbuilder.runtime import executions
from flowbuilder.runtime.db.models import Execution, StepRun, now
from flowbuilder.runtime.db.session import clock
from flowbuilder.runtime.queue import Queue

from .conftest import (
    FarEnd,
    call_then_shape,
    queue_with_dead_letters,
    seed,
    set_rows,
    sqs_client,
    wait_until,
    worker_env,
)

LEASE = 3.0  # FLOWBUILDER_LEASE_SECONDS (renewed every second)
VISIBILITY = 3.0  # FLOWBUILDER_VISIBILITY_SECONDS (poll mode; extended every second)
POLL_WAIT = 1.0  # FLOWBUILDER_POLL_WAIT, and the Pipe's receive wait here
SWEEP_EVERY = 0.5  # the sweeper schedule's period, shortened
QUEUED_AFTER_ONCE = 3.0  # FLOWBUILDER_SWEEP_QUEUED_AFTER in once mode (a Fargate task's start-up, shortened)
UNSENT_GRACE = 2.0  # executions.UNSENT_GRACE, shortened
START_UP = 5.0  # a worker process starting and claiming on this (shared, two-core) machine: about 0.6 s
SLACK = 3.0  # database round trips, SQS on moto, the test's own polling


@dataclass
class Figure:
    path: str
    database: str
    measured: float
    bound: float
    formula: str


FIGURES: list[Figure] = []


@pytest.fixture(scope="module", autouse=True)
def _table() -> Iterator[None]:
    yield
    if FIGURES:
        print("\n\n| path | database | measured (s) | bound (s) | bound from |\n|---|---|---|---|---|")
        for f in FIGURES:
            print(f"| {f.path} | {f.database} | {f.measured:.2f} | {f.bound:.1f} | {f.formula} |")


def _record(path: str, url: str, measured: float, bound: float, formula: str) -> None:
    database = url.split(":")[0].split("+")[0]
    FIGURES.append(Figure(path, database, measured, bound, formula))
    print(f"\n{path} on {database}: {measured:.2f} s (bound {bound:.1f} s = {formula})")
    assert measured <= bound, f"{path}: recovered in {measured:.2f} s, over its bound of {bound:.1f} s ({formula})"


# The paths, measured -------------------------------------------------------------------------------------------


@dataclass
class Rig:
    """A database with one workflow (an HTTP step held by the far end until its gate opens, then a transform) and
    three executions of it (two to warm workers up, the subject), a queue on moto, worker processes, the sweeper
    and (once mode) the Pipe."""

    url: str
    factory: Any
    ids: list[str]
    queue: Queue
    sqs_env: dict[str, str]
    far_end: FarEnd
    logs: Path
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)
    threads: list[threading.Thread] = field(default_factory=list)
    tasks: dict[str, list[subprocess.Popen[bytes]]] = field(default_factory=dict)
    doomed: set[str] = field(default_factory=set)  # executions whose next task the Pipe kills before it claims

    @property
    def subject(self) -> str:
        return self.ids[2]

    def env(self, mode: str, **extra: str) -> dict[str, str]:
        return worker_env(self.url, self.sqs_env, FLOWBUILDER_WORKER_MODE=mode,
                          FLOWBUILDER_LEASE_SECONDS=f"{LEASE:g}", FLOWBUILDER_VISIBILITY_SECONDS=f"{VISIBILITY:g}",
                          FLOWBUILDER_POLL_WAIT=f"{POLL_WAIT:g}", **extra)

    def start(self, env: dict[str, str], name: str) -> subprocess.Popen[bytes]:
        with (self.logs / f"{name}-{len(self.processes)}.log").open("wb") as log:
            process = subprocess.Popen([sys.executable, "-m", "flowbuilder.runtime.worker"], env=env, stdout=log,
                                       stderr=subprocess.STDOUT)
        self.processes.append(process)
        return process

    def every(self, seconds: float, action: Callable[[], None]) -> None:
        def loop() -> None:
            while not self.stop.wait(seconds):
                try:
                    action()
                except Exception as exc:  # as the schedule's next run would, try again
                    print(f"{action.__name__}: {type(exc).__name__}: {exc}")

        thread = threading.Thread(target=loop, daemon=True)
        thread.start()
        self.threads.append(thread)

    def sweeper(self) -> None:
        """executions.sweep every SWEEP_EVERY seconds, in this process, as the sweeper schedule runs it."""

        def sweep() -> None:
            executions.sweep(self.factory, self.queue)

        self.every(SWEEP_EVERY, sweep)

    def pipe(self) -> None:
        """EventBridge Pipes: each message received is deleted and one once-mode task is started for it."""
        env = self.env("once")

        def deliver() -> None:
            for message in self.queue.receive(10, wait=int(POLL_WAIT)):
                self.queue.delete(message)
                task = self.start({**env, "FLOWBUILDER_EXECUTION_ID": message.body}, "task")
                self.tasks.setdefault(message.body, []).append(task)
                if message.body in self.doomed:  # dies before it claims: Spot reclaimed at start, a crash
                    self.doomed.discard(message.body)
                    task.kill()

        self.every(0.01, deliver)

    def row(self, execution_id: str) -> Any:
        with self.factory() as session:
            return session.execute(select(Execution.state, Execution.lease_owner, Execution.attempts)
                                   .where(Execution.id == execution_id)).one()

    def claimed(self, attempts: int) -> Callable[[], bool]:
        """The subject claimed `attempts` times (a claim counts one; the state may already have moved on)."""
        return lambda: int(self.row(self.subject).attempts) >= attempts

    def holder(self) -> subprocess.Popen[bytes]:
        """The worker process holding the subject's lease (its owner is host:pid:nonce)."""
        pid = int(self.row(self.subject).lease_owner.split(":")[1])
        return next(p for p in self.processes if p.pid == pid)

    def close(self) -> None:
        self.stop.set()
        self.far_end.gate.set()
        for thread in self.threads:
            thread.join(10)
        for process in self.processes:
            if process.poll() is None:
                process.send_signal(signal.SIGCONT)
                process.terminate()
        for process in self.processes:
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                process.kill()
        self.far_end.close()


@pytest.fixture
def rig(database_url: str, moto_server: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Rig]:
    # The sweeper runs in this process: its settings, shortened.
    monkeypatch.setenv("FLOWBUILDER_VISIBILITY_SECONDS", f"{VISIBILITY:g}")
    monkeypatch.setenv("FLOWBUILDER_POLL_WAIT", f"{POLL_WAIT:g}")
    for name in ("FLOWBUILDER_SWEEP_QUEUED_AFTER", "FLOWBUILDER_WORKER_MODE", "FLOWBUILDER_WORKER_MAX_RUNNING"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(executions, "UNSENT_GRACE", timedelta(seconds=UNSENT_GRACE))
    sqs = sqs_client(moto_server)
    queue_url, _ = queue_with_dead_letters(sqs, "recovery", visibility=int(VISIBILITY), max_receive=20)
    sqs_env = {"AWS_ENDPOINT_URL": moto_server, "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
               "AWS_DEFAULT_REGION": "us-east-1", "queue_url": queue_url}
    far_end = FarEnd(gated=True)
    factory, ids = seed(database_url, call_then_shape(far_end.url), 3)
    built = Rig(database_url, factory, ids, Queue(queue_url, sqs), sqs_env, far_end, tmp_path)
    yield built
    built.close()


def _since(start: float, condition: Callable[[], bool], what: str, timeout: float = 60) -> float:
    """Seconds from `start` (time.monotonic) until `condition` held, checked every 20 ms."""
    while not condition():
        assert time.monotonic() - start < timeout, f"no {what} within {timeout} s"
        time.sleep(0.02)
    return time.monotonic() - start


def _poll_workers(rig: Rig, count: int) -> None:
    """Start `count` poll workers and wait until each serves: `count` warm-up executions held at the far end at
    once (each worker runs one at a time), then let through. The warm-ups not needed are taken out."""
    env = rig.env("poll")
    for _ in range(count):
        rig.start(env, "poll")
    warm, spare = rig.ids[:count], rig.ids[count:2]
    set_rows(rig.factory, spare, state="succeeded")
    for execution_id in warm:
        executions.enqueue(rig.factory, rig.queue, execution_id)
    wait_until(lambda: rig.far_end.in_flight() == count, 120, "every worker serving")
    rig.far_end.gate.set()
    wait_until(lambda: all(rig.row(i).state == "succeeded" for i in warm), 60, "the warm-ups")
    rig.far_end.gate.clear()
    time.sleep(1.5 * POLL_WAIT)  # every worker back in a receive


def mid_step(rig: Rig) -> None:
    """Wait until the subject's HTTP step is at the far end (held there until the gate opens)."""
    wait_until(lambda: rig.far_end.in_flight() >= 1 and rig.row(rig.subject).state == "running", 60, "a step")


def _succeeds(rig: Rig) -> None:
    rig.far_end.gate.set()
    wait_until(lambda: rig.row(rig.subject).state == "succeeded", 120, "success")
    with rig.factory() as session:
        steps = session.scalars(select(StepRun.step).where(StepRun.execution_id == rig.subject)).all()
    assert sorted(steps) == ["call", "shape"]  # each step recorded once


def test_api_crash_between_commit_and_send(rig: Rig) -> None:
    """The API committed the execution and died before its conditional UPDATE: never sent; the sweeper sends it
    UNSENT_GRACE after it was recorded."""
    _poll_workers(rig, 1)
    set_rows(rig.factory, [rig.subject], created_at=now())  # recorded now; the crash follows
    recorded = time.monotonic()
    rig.sweeper()
    measured = _since(recorded, rig.claimed(1), "claim")
    _record("API crash between commit and send", rig.url, measured, UNSENT_GRACE + SWEEP_EVERY + POLL_WAIT + SLACK,
            "unsent grace + sweep + poll wait + slack")
    _succeeds(rig)


def test_crash_between_marking_sent_and_sending(rig: Rig) -> None:
    """enqueue's UPDATE committed, the process died before the message left: sent on paper; the sweeper sends it
    queued-after (poll: visibility + poll wait, derived) after that."""
    _poll_workers(rig, 1)
    with rig.factory.begin() as session:
        session.execute(update(Execution).where(Execution.id == rig.subject).values(enqueued_at=clock(session)))
    marked = time.monotonic()
    rig.sweeper()
    measured = _since(marked, rig.claimed(1), "claim")
    queued_after = executions.queued_after().total_seconds()
    assert queued_after == VISIBILITY + POLL_WAIT
    _record("crash between marking sent and sending, poll", rig.url, measured,
            queued_after + SWEEP_EVERY + POLL_WAIT + SLACK,
            "queued-after (visibility + poll wait) + sweep + poll wait + slack")
    _succeeds(rig)


POLL_TAKE_OVER = max(VISIBILITY + POLL_WAIT, LEASE + SWEEP_EVERY + POLL_WAIT) + SLACK


def test_poll_worker_killed_mid_run(rig: Rig) -> None:
    """SIGKILL: its message comes back after the visibility timeout and its lease expires; whichever comes last
    lets the other worker claim (a message back before the lease expires finds the execution busy and is
    deleted, and the sweeper sends the expired lease)."""
    _poll_workers(rig, 2)
    rig.sweeper()
    executions.enqueue(rig.factory, rig.queue, rig.subject)
    mid_step(rig)
    rig.holder().kill()
    killed = time.monotonic()
    rig.far_end.gate.set()
    measured = _since(killed, rig.claimed(2), "take-over")
    _record("poll worker killed mid-run", rig.url, measured, POLL_TAKE_OVER,
            "max(visibility + poll wait, lease + sweep + poll wait) + slack")
    _succeeds(rig)


def test_poll_worker_stalled_loses_its_lease(rig: Rig) -> None:
    """SIGSTOP (a frozen host, a long pause): its lease and its message's visibility lapse and the other worker
    takes over; resumed, the stalled worker writes nothing over the new holder's work."""
    _poll_workers(rig, 2)
    rig.sweeper()
    executions.enqueue(rig.factory, rig.queue, rig.subject)
    mid_step(rig)
    stalled = rig.holder()
    stalled.send_signal(signal.SIGSTOP)
    stopped = time.monotonic()
    measured = _since(stopped, rig.claimed(2), "take-over")
    rig.far_end.gate.set()
    stalled.send_signal(signal.SIGCONT)
    _record("worker stalled (lost lease), poll", rig.url, measured, POLL_TAKE_OVER,
            "max(visibility + poll wait, lease + sweep + poll wait) + slack")
    _succeeds(rig)
    time.sleep(2)  # the resumed worker's late writes, if it made any, would land now
    assert rig.row(rig.subject).state == "succeeded"


def test_poll_worker_stopped_by_sigterm(rig: Rig) -> None:
    """SIGTERM (scale-in, a deploy, a Spot warning): the step finishes, the execution is released and its message
    made visible at once; the other worker claims it within a poll wait, no sweeper needed (none runs here).
    Measured from the end of the step (the far end letting it through)."""
    _poll_workers(rig, 2)
    executions.enqueue(rig.factory, rig.queue, rig.subject)
    mid_step(rig)
    rig.holder().send_signal(signal.SIGTERM)
    time.sleep(0.3)
    rig.far_end.gate.set()  # the current step ends; the worker releases
    ended = time.monotonic()
    measured = _since(ended, rig.claimed(2), "claim")
    _record("SIGTERM (Spot, scale-in), poll", rig.url, measured, POLL_WAIT + SLACK, "poll wait + slack")
    _succeeds(rig)
    assert rig.far_end.keys[f"{rig.subject}:call"] == 1  # the finished step was not repeated


def _once_mode(rig: Rig, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FLOWBUILDER_WORKER_MODE", "once")
    monkeypatch.setenv("FLOWBUILDER_SWEEP_QUEUED_AFTER", f"{QUEUED_AFTER_ONCE:g}")
    set_rows(rig.factory, rig.ids[:2], state="succeeded")  # no warm-up: each task is new
    rig.pipe()


def test_once_task_killed_mid_run(rig: Rig, monkeypatch: pytest.MonkeyPatch) -> None:
    """SIGKILL of the task (Pipes deleted the message when it started): the lease expires, the sweeper sends the
    execution again, the Pipe starts a task for it."""
    _once_mode(rig, monkeypatch)
    rig.sweeper()
    executions.enqueue(rig.factory, rig.queue, rig.subject)
    mid_step(rig)
    rig.holder().kill()
    killed = time.monotonic()
    rig.far_end.gate.set()
    measured = _since(killed, rig.claimed(2), "take-over")
    _record("once task killed mid-run", rig.url, measured, LEASE + SWEEP_EVERY + POLL_WAIT + START_UP + SLACK,
            "lease + sweep + Pipe + task start-up + slack")
    _succeeds(rig)


def test_once_task_dead_before_claiming(rig: Rig, monkeypatch: pytest.MonkeyPatch) -> None:
    """The task the Pipe started dies before it claims (its message already deleted): the execution stays
    queued, sent; the sweeper sends it again queued-after its send."""
    _once_mode(rig, monkeypatch)
    rig.sweeper()
    rig.doomed.add(rig.subject)
    rig.far_end.gate.set()
    sent = time.monotonic()
    executions.enqueue(rig.factory, rig.queue, rig.subject)
    measured = _since(sent, rig.claimed(1), "claim")
    first = rig.tasks[rig.subject][0]
    assert first.wait(10) == -signal.SIGKILL and len(rig.tasks[rig.subject]) == 2
    _record("once task dead before claiming", rig.url, measured,
            QUEUED_AFTER_ONCE + SWEEP_EVERY + POLL_WAIT + START_UP + SLACK,
            "queued-after + sweep + Pipe + task start-up + slack")
    _succeeds(rig)


def test_once_task_stopped_by_sigterm(rig: Rig, monkeypatch: pytest.MonkeyPatch) -> None:
    """Fargate Spot's two-minute warning: the step finishes, the task releases the execution and sends it again
    itself; the Pipe starts a task for it, no sweeper needed (none runs here). Measured from the end of the
    step."""
    _once_mode(rig, monkeypatch)
    executions.enqueue(rig.factory, rig.queue, rig.subject)
    mid_step(rig)
    first = rig.holder()
    first.send_signal(signal.SIGTERM)
    time.sleep(0.3)
    rig.far_end.gate.set()
    ended = time.monotonic()
    measured = _since(ended, rig.claimed(2), "claim")
    assert first.wait(60) == 0
    _record("SIGTERM (Spot), once", rig.url, measured, POLL_WAIT + START_UP + SLACK, "Pipe + task start-up + slack")
    _succeeds(rig)
    assert rig.far_end.keys[f"{rig.subject}:call"] == 1  # the finished step was not repeated


def test_a_task_starts_within_the_allowance(rig: Rig) -> None:
    """START_UP, which the once-mode bounds include: what a task takes here from spawn to claim."""
    rig.far_end.gate.set()
    spawned = time.monotonic()
    task = rig.start(rig.env("once", FLOWBUILDER_EXECUTION_ID=rig.subject), "task")
    measured = _since(spawned, rig.claimed(1), "claim")
    _record("task start-up to claim, this machine", rig.url, measured, START_UP, "START_UP")
    assert task.wait(60) == 0
