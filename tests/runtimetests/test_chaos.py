"""Chaos: 200 executions of a two-step workflow (an HTTP call, then a transform) through real worker processes
while a driver injects faults, in both modes, on PostgreSQL and on SQLite:

- kills: SIGKILL and SIGTERM, alternating, of random workers;
- stalls: SIGSTOP of a worker, mostly one whose HTTP step is in flight at the sink, for longer than the lease
  (3 s here), then SIGCONT: while it is frozen its lease expires and its executions are taken over (by a
  redelivered message, a duplicate the driver sends once the lease has expired, or the sweeper queueing them
  again); then it wakes up where it was;
- duplicates: extra messages for random executions that are queued, running or finished.

Faults come at a pace set by the work (after so many executions succeed), so a loaded machine's slower run
gets as many per execution as an idle one's; the last tenth of the executions runs without kills or stalls.

The sink answers within 50 ms, and one request in six after up to 1.5 s, so that steps are in flight when their
worker stops; it honours Idempotency-Keys as payment APIs do (the first request with a key has the effect, a
repeat gets the first answer back: a replay, allowed and counted).

Afterwards: every execution succeeded, exactly once (one committed transition to succeeded; no two workers
say they succeeded it); exactly one step row per execution and step, positions and finish times in step
order; one effect per Idempotency-Key; nothing in flight (no lease, no message, no process); the dead-letter
queue holds no execution (poll: the poison message is there). Triggers audit every lease-relevant write
(chaos_audit.py): a step row, outcome or release written without the writer's own live lease fails the run
(SQLite, whose writers are anonymous: without a running execution with an owner).

Seeded: one random.Random per test makes every choice of the driver; the seed is printed (-s, and in every
failure), and FLOWBUILDER_CHAOS_SEED=<seed> makes the same choices again, as far as the processes' timing
(the machine's) lets it. The deadline is derived from the work, not fixed: the throughput of the first tenth of the
executions, extrapolated with a factor of 3, plus the recovery bounds; a run also fails when nothing moves for
that recovery time. A failure says where things stand: executions by state, the unfinished ones, the queues,
the processes, the faults so far, and the story of each execution a check names.

The driver plays AWS's part: in once mode it is the Pipe (receive, delete, start one task per message; four
tasks at a time here, for two cores), and a thread runs the sweeper every five seconds, as its schedule does.
"""

from __future__ import annotations

import math
import os
import random
import re
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, func, make_url, select, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session, sessionmaker

from conftest import fresh_postgres_url, json_server
from flowbuilder.runtime import executions
from flowbuilder.runtime.db.models import RUNNING, Execution, StepRun, now
from flowbuilder.runtime.db.session import engine
from flowbuilder.runtime.queue import Queue

from . import chaos_audit
from .conftest import queue_with_dead_letters, sqs_client, two_steps, utc
from .conftest import seed as record_executions

EXECUTIONS = 200
LEASE = 3  # seconds; short, so that a stalled worker's lease expires and another worker takes over
VISIBILITY = 6  # a poll worker's message visibility (extended every third of it while the execution runs)
# The sweeper's period: longer than the lease, as in production (5 minutes, a 60 s lease), so that a stopped
# worker's execution is taken over both ways: by a redelivered message or duplicate that finds the lease expired,
# and by the sweeper queueing it again.
SWEEP_EVERY = 5.0
STALL = (LEASE + 1.0, 2 * LEASE + 2.0)  # seconds stopped: past the lease always, past the visibility sometimes
SLOW_SHARE, SLOW = 1 / 6, (0.3, 1.5)  # sink answers that take long, and how long
FACTOR = 3  # the deadline: the measured pace of the first tenth, this many times over, plus the recovery time
POISON = "poison-not-an-execution"
DUPLICATED = ("queued", "running", "succeeded")  # the states of executions the driver sends duplicates for
WORKER = [sys.executable, "-m", "flowbuilder.runtime.worker"]
OUTCOME = re.compile(r"execution ([0-9a-f-]{36}): (succeeded|failed|released|lost|busy|finished|missing|deferred)\b")


class IdempotentSink:
    """Does each Idempotency-Key's work once; a repeated key gets the first answer back (a replay). Answers
    after a random delay, sometimes a long one; knows which keys are in flight."""

    def __init__(self, seed: int) -> None:
        self.effects: Counter[str] = Counter()
        self.replays: Counter[str] = Counter()
        self.answers: dict[str, Any] = {}
        self.in_flight: Counter[str] = Counter()
        self.rng = random.Random(seed)  # its own stream: the server's threads draw in arrival order
        self.lock = threading.Lock()
        self.server, self.url = json_server(self.respond)
        self.server.handle_error = lambda *args: None  # type: ignore[method-assign]  # a killed worker's pipe

    def respond(self, request: BaseHTTPRequestHandler, body: Any) -> tuple[int, Any]:
        key = request.headers.get("Idempotency-Key", "")
        with self.lock:
            slow = self.rng.random() < SLOW_SHARE
            delay = self.rng.uniform(*SLOW) if slow else self.rng.uniform(0, 0.05)
            self.in_flight[key] += 1
        try:
            time.sleep(delay)  # room for a kill or a stall while the step is in flight
        finally:
            with self.lock:
                self.in_flight[key] -= 1
                if not self.in_flight[key]:
                    del self.in_flight[key]
        with self.lock:
            if key in self.answers:
                self.replays[key] += 1
            else:
                self.effects[key] += 1
                self.answers[key] = {"echo": body, "path": "/hook"}
            return 200, self.answers[key]

    def executions_in_flight(self) -> list[str]:
        with self.lock:
            return sorted({key.split(":")[0] for key in self.in_flight})


@dataclass(eq=False)
class Worker:
    process: subprocess.Popen[bytes]
    tag: str  # its connections' application_name (PostgreSQL)
    log: Path
    stopped: bool = False
    killed: bool = False  # SIGKILL sent (it may take a moment to go)

    def alive(self) -> bool:
        return self.process.poll() is None


def recovery() -> float:
    """The longest a straggler may take, twice over: its message gone, it waits for the sweeper's rule for
    unclaimed executions (executions.queued_after, from the sweeper's settings: poll 45 s here, once 120 s); its
    worker stopped or killed, for the lease, the visibility and the stall to end."""
    lost = executions.queued_after().total_seconds()
    return 2 * (lost + LEASE + VISIBILITY + STALL[1] + SWEEP_EVERY) + 30


class Pace:
    """When to give up, derived from the work: at the measured pace of the first tenth of the executions
    (start-up, faults and all) extrapolated to the rest, FACTOR times over, plus the recovery time for
    stragglers; and whenever nothing moves (no execution succeeds, no message leaves, no task starts) for the
    recovery time."""

    def __init__(self, total: int) -> None:
        self.total, self.start, self.recovery = total, time.monotonic(), recovery()
        self.sample = max(1, total // 10)
        self.rate: float | None = None
        self.deadline = math.inf
        self.state: tuple[Any, ...] = ()
        self.changed = self.start

    def over(self, done: int, *moving: Any) -> str | None:
        moment = time.monotonic()
        if (done, *moving) != self.state:
            self.state, self.changed = (done, *moving), moment
        if self.rate is None and done >= self.sample:
            self.rate = done / (moment - self.start)
            self.deadline = moment + (self.total - done) / self.rate * FACTOR + self.recovery
        if moment > self.deadline:
            return (f"deadline: {done}/{self.total} succeeded after {moment - self.start:.0f} s; the first "
                    f"{self.sample} went at {self.rate:.2f}/s, so the run had {self.deadline - self.start:.0f} s")
        if moment - self.changed > self.recovery:
            return f"stuck: {done}/{self.total} succeeded, nothing moved for {self.recovery:.0f} s"
        return None

    def describe(self) -> str:
        if self.rate is None:
            return "no pace measured"
        return (f"deadline {self.deadline - self.start:.0f} s from the first {self.sample} at {self.rate:.2f}/s "
                f"x {FACTOR} + {self.recovery:.0f} s")


class Schedule:
    """Faults paced by the work, not the clock: each kind is due again after a random number of executions more
    have succeeded, so a loaded machine's slower run gets as many faults per execution as an idle one's. (Per
    second, as the driver did before, a run on a busy machine had its workers killed several times per
    execution: a message dead-lettered after its holders failed it 8 times, an execution claimed 7 times.)"""

    def __init__(self, rng: random.Random, every: dict[str, tuple[float, float]]) -> None:
        self.rng, self.every = rng, every
        self.due = {kind: rng.uniform(*gap) for kind, gap in every.items()}

    def __call__(self, kind: str, done: int) -> bool:
        """Whether a fault of this kind is due now, `done` executions having succeeded; if so, when the next is."""
        if done < self.due[kind]:
            return False
        self.due[kind] = done + self.rng.uniform(*self.every[kind])
        return True


class Driver:
    """The worker processes, the faults injected into them, the sweeper thread, and the verdict."""

    def __init__(self, *, seed: int, name: str, url: str, factory: sessionmaker[Session], ids: list[str],
                 sqs: Any, queue_url: str, dlq_url: str, sink: IdempotentSink, env: dict[str, str],
                 logs: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        self.seed, self.rng, self.name = seed, random.Random(seed), name
        self.url, self.factory, self.ids = url, factory, ids
        self.postgres = url.startswith("postgresql")
        self.sqs, self.queue_url, self.dlq_url = sqs, queue_url, dlq_url
        self.queue = Queue(queue_url, sqs)
        self.sink, self.env, self.logs, self.monkeypatch = sink, env, logs, monkeypatch
        self.workers: list[Worker] = []
        self.lock = threading.Lock()
        self.timers: list[threading.Timer] = []
        self.kills: Counter[str] = Counter()
        self.stalls: Counter[str] = Counter()
        self.duplicates: Counter[str] = Counter()  # by the execution's state when its duplicate was sent
        self.sent: dict[str, list[str]] = defaultdict(list)  # execution -> the driver's extra messages, when
        self.sweeps: Counter[str] = Counter()
        self.started, self.wall = time.monotonic(), time.time()
        self.events: dict[str, list[str]] = defaultdict(list)  # worker tag -> what the driver did to it, when
        self.reported = self.started
        self.finished = threading.Event()
        self.sweeper = threading.Thread(target=self._sweep, daemon=True)
        self.sweeper.start()

    def sweep_as(self, env: dict[str, str]) -> None:
        """The sweeper reads its settings (worker mode, running limit, lease, visibility, poll wait) from the
        environment, as the scheduler function gets the workers' own: this process's, for the test."""
        for name, value in env.items():
            if name.startswith("FLOWBUILDER_") and name not in ("FLOWBUILDER_DATABASE_URL", "FLOWBUILDER_QUEUE_URL"):
                self.monkeypatch.setenv(name, value)

    def _sweep(self) -> None:
        while not self.finished.wait(SWEEP_EVERY):
            try:
                for execution_id in executions.sweep(self.factory, self.queue):
                    self.sweeps["re-sent"] += 1
                    self.sent[execution_id].append(f"{self.now():.1f} s swept")
            except Exception as exc:  # the next sweep tries again, as the schedule would
                self.sweeps[f"failed ({type(exc).__name__})"] += 1

    # Processes and faults.

    def start(self, env: dict[str, str]) -> Worker:
        tag = f"chaos-w{len(self.workers):04d}"
        url = self.url
        if self.postgres:  # the audit names the writer of each change by its connection's application_name
            url = make_url(url).update_query_dict({"application_name": tag}).render_as_string(hide_password=False)
        log = self.logs / f"{tag}.log"
        with log.open("wb") as out:
            process = subprocess.Popen(WORKER, env={**env, "FLOWBUILDER_DATABASE_URL": url}, stdout=out,
                                       stderr=subprocess.STDOUT)
        worker = Worker(process, tag, log)
        with self.lock:
            self.workers.append(worker)
        return worker

    def alive(self) -> list[Worker]:
        return [w for w in self.workers if w.alive()]

    def active(self) -> list[Worker]:
        with self.lock:
            return [w for w in self.workers if not (w.stopped or w.killed) and w.alive()]

    def kill_one(self) -> None:
        active = self.active()
        if active:
            victim = self.rng.choice(active)
            # Alternate, so both kinds of death happen in every run.
            sig = signal.SIGKILL if sum(self.kills.values()) % 2 == 0 else signal.SIGTERM
            victim.process.send_signal(sig)
            victim.killed = sig == signal.SIGKILL
            self.kills[sig.name] += 1
            self.events[victim.tag].append(f"{self.now():.1f} s {victim.tag} {sig.name}")

    def stall_one(self, most: int) -> None:
        """Stop a worker (at most `most` at once) for longer than the lease; a timer thread resumes it, so a
        sweep blocked on a row the stopped worker has locked cannot keep it stopped."""
        with self.lock:
            if sum(w.stopped for w in self.workers) >= most:
                return
        active = self.active()
        if not active:
            return
        victim, where = None, "anywhere"
        if self.rng.random() < 0.75:
            holders = self._holders(self.sink.executions_in_flight())
            candidates = [w for w in active if w.process.pid in holders]
            if candidates:
                victim, where = self.rng.choice(candidates), "mid-step"
        victim = victim or self.rng.choice(active)
        seconds = self.rng.uniform(*STALL)
        with self.lock:
            victim.process.send_signal(signal.SIGSTOP)
            victim.stopped = True
            self.events[victim.tag].append(f"{self.now():.1f} s {victim.tag} SIGSTOP ({where}, {seconds:.1f} s)")
        timers = [threading.Timer(seconds, self._resume, (victim,))]
        if self.rng.random() < 0.75:  # and once its lease has expired, a duplicate for one of its executions
            timers.append(threading.Timer(LEASE + 0.5, self._take_over, (victim, self.rng.random())))
        for timer in timers:
            timer.daemon = True
            timer.start()
        self.timers += timers
        self.stalls[where] += 1

    def now(self) -> float:
        return time.monotonic() - self.started

    def _holders(self, ids: list[str]) -> set[int]:
        """PIDs of the processes holding the leases of these executions."""
        if not ids:
            return set()
        with self.factory() as session:
            owners = session.scalars(select(Execution.lease_owner)
                                     .where(Execution.id.in_(ids), Execution.state == RUNNING)).all()
        return {pid for owner in owners if (pid := chaos_audit.owner_pid(owner)) is not None}

    def _resume(self, worker: Worker) -> None:
        with self.lock:
            if worker.stopped:
                worker.process.send_signal(signal.SIGCONT)
                worker.stopped = False
                self.events[worker.tag].append(f"{self.now():.1f} s {worker.tag} SIGCONT")

    def duplicate(self) -> None:
        """Send one more message for a random execution that is queued, running or finished, the three in turn
        (the next one there is)."""
        with self.factory() as session:
            rows = session.execute(select(Execution.state, Execution.id).order_by(Execution.id)).all()
        by_state: dict[str, list[str]] = defaultdict(list)
        for state, execution_id in rows:
            by_state[state].append(execution_id)
        turn = sum(self.duplicates[state] for state in DUPLICATED)
        for state in DUPLICATED[turn % 3:] + DUPLICATED[:turn % 3]:
            if by_state[state]:
                self._send(self.rng.choice(by_state[state]), state)
                return

    def _send(self, execution_id: str, kind: str) -> None:
        self.sqs.send_message(QueueUrl=self.queue_url, MessageBody=execution_id)
        self.duplicates[kind] += 1
        self.sent[execution_id].append(f"{self.now():.1f} s duplicated ({kind})")

    def _take_over(self, worker: Worker, pick: float) -> None:
        """A duplicate for an execution of a stopped worker whose lease has expired: it takes it over while the
        worker is frozen, unless a sweep queued it first."""
        with self.lock:
            if not worker.stopped:
                return
        with self.factory() as session:
            moment = session.scalar(select(func.now())) if self.postgres else now()
            rows = session.execute(select(Execution.id, Execution.lease_owner, Execution.lease_expires_at)
                                   .where(Execution.state == RUNNING).order_by(Execution.id)).all()
        held = [i for i, owner, expires in rows
                if chaos_audit.owner_pid(owner) == worker.process.pid and expires and utc(expires) < moment]
        if held:
            self._send(held[int(pick * len(held))], "stalled")

    def resume_all(self) -> None:
        for timer in self.timers:
            timer.cancel()
        for worker in self.workers:
            self._resume(worker)

    def close(self) -> None:
        """Whatever is left (a failed run): resumed and killed; the sweeper stopped."""
        self.finished.set()
        self.resume_all()
        for worker in self.alive():
            worker.process.kill()
        for worker in self.workers:
            worker.process.wait(timeout=30)
        self.sweeper.join(timeout=60)

    # Progress.

    def states(self) -> Counter[str]:
        with self.factory() as session:
            rows = session.execute(select(Execution.state, func.count()).group_by(Execution.state)).all()
        return Counter({state: count for state, count in rows})

    def succeeded(self) -> int:
        return self.states()["succeeded"]

    def depth(self, queue: str | None = None) -> tuple[int, int]:
        attrs = self.sqs.get_queue_attributes(QueueUrl=queue or self.queue_url, AttributeNames=["All"])
        return int(attrs["Attributes"]["ApproximateNumberOfMessages"]), int(
            attrs["Attributes"]["ApproximateNumberOfMessagesNotVisible"])

    def faults(self) -> str:
        return (f"kills {dict(self.kills)}, stalls {dict(self.stalls)}, duplicates for {dict(self.duplicates)}, "
                f"sweeps {dict(self.sweeps)}")

    def report(self, done: int) -> None:
        """A line every 15 s (-s shows them)."""
        if time.monotonic() - self.reported >= 15:
            self.reported = time.monotonic()
            print(f"  {self.reported - self.started:4.0f} s: {done}/{EXECUTIONS} succeeded, {len(self.alive())} "
                  f"processes, queue {self.depth()}, dead letters {self.depth(self.dlq_url)}; {self.faults()}")

    def where_things_stand(self, reason: str) -> str:
        lines = [f"{self.name}: {reason}",
                 f"seed {self.seed}: FLOWBUILDER_CHAOS_SEED={self.seed} makes the same choices",
                 f"after {time.monotonic() - self.started:.0f} s: executions by state {dict(self.states())}; queue "
                 f"(visible, in flight) {self.depth()}, dead letters {self.depth(self.dlq_url)}",
                 f"processes: {len(self.alive())} alive ({sum(w.stopped for w in self.workers)} stopped) of "
                 f"{len(self.workers)} started; {self.faults()}"]
        with self.factory() as session:
            database_now = session.scalar(select(func.now()) if self.postgres else select(func.datetime("now")))
            lines.append(f"database now: {database_now}")
            left = session.execute(select(Execution).where(Execution.state != "succeeded")
                                   .order_by(Execution.created_at).limit(12)).scalars().all()
            for execution in left:
                steps = session.scalars(select(StepRun.step).where(StepRun.execution_id == execution.id)).all()
                lines.append(f"  {execution.id} {execution.state}, attempts {execution.attempts}, lease "
                             f"{execution.lease_owner} until {execution.lease_expires_at}, sent "
                             f"{execution.enqueued_at}, steps {list(steps)}")
        errors = [line for line in self._log_lines() if " ERROR " in line]
        lines += [f"worker log errors ({len(errors)}):", *errors[-5:]]
        return "\n".join(lines)

    def _log_lines(self) -> Iterator[str]:
        for worker in self.workers:
            yield from worker.log.read_text("utf-8", "replace").splitlines()

    # The verdict.

    def stop_workers(self) -> None:
        """Poll workers, once the queue is empty: resumed, asked to stop (SIGTERM), waited for."""
        self.finished.set()
        self.resume_all()
        for worker in self.alive():
            worker.process.send_signal(signal.SIGTERM)
        for worker in self.workers:
            worker.process.wait(timeout=60)
        self.sweeper.join(timeout=60)

    def dead_letters(self) -> list[dict[str, Any]]:
        messages: list[dict[str, Any]] = []
        while True:
            found = self.sqs.receive_message(QueueUrl=self.dlq_url, MaxNumberOfMessages=10, WaitTimeSeconds=1,
                                             MessageSystemAttributeNames=["All"])
            if not found.get("Messages"):
                return sorted(messages, key=lambda m: str(m["Body"]))
            messages += found["Messages"]

    def history(self, execution_id: str, writes: list[chaos_audit.Write]) -> list[str]:
        """An execution's story: the driver's messages for it, its audited writes, what workers said of it,
        and what the driver did to the workers that claimed it; in time order."""
        tags = {w.process.pid: w.tag for w in self.workers}
        story = list(self.sent[execution_id])
        holders: set[str] = set()
        for w in writes:
            if w.execution_id != execution_id or (w.kind == "update" and w.old_state == w.new_state
                                                  and w.old_owner == w.new_owner):
                continue  # renewals and send times aside
            owner = tags.get(chaos_audit.owner_pid(w.new_owner or w.old_owner) or 0, "?")
            if w.new_owner and w.new_owner != w.old_owner:
                holders.add(owner)
            change = f"step {w.step}" if w.kind == "step" else f"{w.old_state}->{w.new_state}"
            writer = w.writer or ("the driver" if self.postgres else "?")
            story.append(f"{w.wall.timestamp() - self.wall:.1f} s {change}, lease of {owner} (written by {writer})")
        for worker in self.workers:
            for line in worker.log.read_text("utf-8", "replace").splitlines():
                if execution_id in line:
                    moment = datetime.strptime(line[:23], "%Y-%m-%d %H:%M:%S,%f").timestamp() - self.wall
                    story.append(f"{moment:.1f} s {worker.tag} said: {line[24:]}")
        story += [event for tag in sorted(holders) for event in self.events[tag]]
        return sorted(story, key=lambda line: float(line.split(" s ", 1)[0]))

    def check(self, dead_letters: list[str], pace: Pace) -> None:
        problems: list[str] = []
        states = self.states()
        if states != Counter(succeeded=EXECUTIONS):
            problems.append(f"executions by state: {dict(states)}")

        # Exactly once: one committed transition to succeeded each, and no two workers saying so.
        pids = {w.tag: w.process.pid for w in self.workers} if self.postgres else None
        writes = chaos_audit.read(self.factory)
        verdict = chaos_audit.judge(writes, pids)
        not_once = {i: verdict.succeeded[i] for i in self.ids if verdict.succeeded[i] != 1}
        if not_once:
            problems.append(f"{len(not_once)} executions did not become succeeded exactly once: "
                            f"{dict(list(not_once.items())[:5])}")
        said: Counter[tuple[str, str]] = Counter()
        for line in self._log_lines():
            if found := OUTCOME.search(line):
                said[found.group(1), found.group(2)] += 1
        twice = {i: n for (i, outcome), n in said.items() if outcome == "succeeded" and n > 1}
        if twice:
            problems.append(f"{len(twice)} executions were reported succeeded by more than one worker: "
                            f"{dict(list(twice.items())[:5])}")

        # Steps: one row per execution and step, in order.
        with self.factory() as session:
            rows = session.execute(select(StepRun.execution_id, StepRun.step, StepRun.position, StepRun.status,
                                          StepRun.finished_at)).all()
        by_execution: dict[str, list[Any]] = defaultdict(list)
        for row in rows:
            by_execution[row.execution_id].append(row)
        wrong = [i for i in self.ids if [(r.step, r.position, r.status) for r in sorted(
            by_execution[i], key=lambda r: (r.finished_at, r.position))] != [
            ("call", 0, "succeeded"), ("shape", 1, "succeeded")]]
        if wrong or len(rows) != 2 * EXECUTIONS or verdict.steps != 2 * EXECUTIONS:
            problems.append(f"{len(rows)} step rows ({verdict.steps} inserted); {len(wrong)} executions without "
                            f"exactly (call, shape) in order, e.g. {[(i, by_execution[i]) for i in wrong[:3]]}")

        # The far end: one effect per Idempotency-Key.
        effects = self.sink.effects
        if len(effects) != EXECUTIONS or set(effects.values()) != {1}:
            problems.append(f"sink: {len(effects)} keys, effects per key {Counter(effects.values())}")

        # Nothing in flight, nothing dead-lettered that succeeded.
        with self.factory() as session:
            leases = session.scalar(select(func.count()).where(Execution.lease_owner.is_not(None)))
        if leases or self.depth() != (0, 0) or self.alive():
            problems.append(f"left in flight: {leases} leases, queue {self.depth()}, {len(self.alive())} processes")
        dead = self.dead_letters()
        if [m["Body"] for m in dead] != sorted(dead_letters):
            lines = [f"dead letters: {[m['Body'] for m in dead]}, expected {dead_letters}"]
            for message in dead[:3]:
                attributes = message.get("Attributes", {})
                sent = int(attributes.get("SentTimestamp", 0)) / 1000 - self.wall
                lines.append(f"  {message['Body']}: sent at {sent:.1f} s, received "
                             f"{attributes.get('ApproximateReceiveCount')} times; its execution:")
                lines += [f"    {line}" for line in self.history(message["Body"], writes)]
            problems.append("\n".join(lines))

        # Every write under the writer's own live lease (the fence).
        if verdict.violations:
            lines = [f"{len(verdict.violations)} writes without the writer's own live lease:",
                     *verdict.violations[:12]]
            for execution_id in list(dict.fromkeys(v.split()[0] for v in verdict.violations))[:2]:
                story = self.history(execution_id, writes)
                lines += [f"  the story of {execution_id}:", *(f"    {line}" for line in story)]
            problems.append("\n    ".join(lines))

        # The faults happened.
        if not (self.kills["SIGKILL"] and self.kills["SIGTERM"] and sum(self.stalls.values())
                and all(self.duplicates[state] for state in DUPLICATED)):
            problems.append(f"not every fault happened: {self.faults()}")

        outcomes = Counter(outcome for (_, outcome), n in said.items() for _ in range(n))
        with self.factory() as session:
            attempts = session.scalar(select(func.max(Execution.attempts)))
        errors = sum(" ERROR " in line for line in self._log_lines())
        print(f"{self.name}: seed {self.seed}, {states['succeeded']}/{EXECUTIONS} succeeded in "
              f"{time.monotonic() - self.started:.0f} s ({pace.describe()}); {len(self.workers)} processes\n"
              f"  faults: {self.faults()}\n"
              f"  sink: {sum(effects.values())} effects, {sum(self.sink.replays.values())} replays on "
              f"{len(self.sink.replays)} keys\n"
              f"  workers said {dict(outcomes)}; most attempts {attempts}; {errors} ERROR log lines\n"
              f"  audit: {verdict.audited} writes, {verdict.claims} claims, {verdict.takeovers} takeovers, "
              f"{verdict.revived} expired leases renewed, {len(verdict.late)} writes after the lease's expiry "
              f"(latest by {max(verdict.late, default=timedelta(0)).total_seconds():.2f} s), "
              f"{len(verdict.violations)} violations")
        assert not problems, (f"{self.name}, seed {self.seed} (FLOWBUILDER_CHAOS_SEED={self.seed} makes the same "
                              f"choices):\n  " + "\n  ".join(problems))


@contextmanager
def _postgres() -> Iterator[str]:
    """A database of the test's own on the machine's server, dropped afterwards: other tests empty the public
    schema of FLOWBUILDER_TEST_POSTGRES_URL's database (fresh_postgres_url), which pulls the tables from under
    a run of minutes when anything else uses the server meanwhile. Without CREATEDB, that database."""
    base = os.environ.get("FLOWBUILDER_TEST_POSTGRES_URL", "")
    if not base:
        yield fresh_postgres_url()  # skips, or fails in CI
        return
    name = f"flowbuilder_chaos_{uuid.uuid4().hex[:12]}"
    admin = create_engine(base, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            connection.execute(text(f'CREATE DATABASE "{name}"'))
    except DBAPIError:
        admin.dispose()
        yield fresh_postgres_url()
        return
    url = make_url(base).set(database=name).render_as_string(hide_password=False)
    try:
        yield url
    finally:
        engine(url).dispose()  # this process's connections (db.session.engine is cached per URL)
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture
def chaos_env(moto_server: str, tmp_path: Path, request: pytest.FixtureRequest,
              monkeypatch: pytest.MonkeyPatch) -> Iterator[Driver]:
    seed = int(os.environ.get("FLOWBUILDER_CHAOS_SEED") or random.SystemRandom().randrange(2**32))
    print(f"\n{request.node.name}: seed {seed} (FLOWBUILDER_CHAOS_SEED={seed} makes the same choices)")
    with ExitStack() as stack:
        sqlite = f"sqlite:///{tmp_path / 'chaos.db'}"
        url = stack.enter_context(_postgres()) if request.param == "postgresql" else sqlite
        sqs = sqs_client(moto_server)
        # The dead-letter queue takes a message its holders failed 8 times, not 5 (the default): here a worker
        # dies every second or so by design, and 5 deaths of one message's holders happened by chance (an
        # execution that then succeeded, its message dead-lettered: a false alarm that measures the driver).
        queue, dlq = queue_with_dead_letters(sqs, "chaos", visibility=3, max_receive=8)
        sink = IdempotentSink(seed ^ 0x5EED)
        stack.callback(sink.server.shutdown)
        factory, ids = record_executions(url, two_steps(sink.url), EXECUTIONS, name="chaos")
        chaos_audit.install(factory)
        env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "FLOWBUILDER_"))}
        env.update({"AWS_ENDPOINT_URL": moto_server, "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                    "AWS_DEFAULT_REGION": "us-east-1", "FLOWBUILDER_QUEUE_URL": queue,
                    "FLOWBUILDER_HTTP_ALLOWLIST": "127.0.0.1/32", "FLOWBUILDER_POLL_WAIT": "1",
                    "FLOWBUILDER_LEASE_SECONDS": str(LEASE),
                    "FLOWBUILDER_VISIBILITY_SECONDS": str(VISIBILITY), "PYTHONUNBUFFERED": "1"})
        logs = tmp_path / "logs"
        logs.mkdir()
        driver = Driver(seed=seed, name=request.node.name, url=url, factory=factory, ids=ids, sqs=sqs,
                        queue_url=queue, dlq_url=dlq, sink=sink, env=env, logs=logs, monkeypatch=monkeypatch)
        stack.callback(driver.close)
        yield driver


@pytest.mark.parametrize("chaos_env", ["postgresql", "sqlite"], indirect=True)
def test_poll_mode_survives_chaos(chaos_env: Driver) -> None:
    """Three workers of four threads, replaced when they die; at most two stopped at once."""
    driver, rng = chaos_env, chaos_env.rng
    # The poison first: it takes 8 receives of 6 s each to reach the dead-letter queue, while the rest runs.
    driver.sqs.send_message(QueueUrl=driver.queue_url, MessageBody=POISON)
    for execution_id in driver.ids:
        executions.send(driver.factory, driver.queue, execution_id)
    env = {**driver.env, "FLOWBUILDER_WORKER_MODE": "poll", "FLOWBUILDER_WORKER_CONCURRENCY": "4"}
    # The sweeper's rule for unclaimed executions, derived, would be the visibility and a poll wait: 7 s here,
    # where production's is 110 s against a 5-minute sweep. Every sweep then sent a duplicate of the whole
    # backlog, and on a loaded machine that fed itself (1,488 re-sends for 200 executions, a 256 s run).
    driver.sweep_as({**env, "FLOWBUILDER_SWEEP_QUEUED_AFTER": "45"})
    pace = Pace(EXECUTIONS)
    # Executions succeeding between faults: a kill per 5 or so, a stall per 11, a duplicate per 6.5.
    due = Schedule(rng, {"kill": (2, 8), "stall": (6, 16), "duplicate": (3, 10)})
    while True:
        done = driver.succeeded()
        depth = driver.depth() if done == EXECUTIONS else None  # (each look costs moto some CPU)
        if depth == (0, 0):
            break
        if (reason := pace.over(done, depth)) is not None:
            pytest.fail(driver.where_things_stand(reason))
        if done < EXECUTIONS * 0.9:  # the last tenth runs in peace, so that the run ends
            if due("kill", done):
                driver.kill_one()
            if due("stall", done):
                driver.stall_one(most=2)
        if done < EXECUTIONS and due("duplicate", done):
            driver.duplicate()
        for _ in range(3 - len(driver.alive())):
            driver.start(env)
        driver.report(done)
        time.sleep(0.4)
    driver.stop_workers()
    driver.check([POISON], pace)


@pytest.mark.parametrize("chaos_env", ["postgresql", "sqlite"], indirect=True)
def test_once_mode_survives_chaos(chaos_env: Driver) -> None:
    """Pipes deletes a message once its task starts: an interrupted task is recovered by the lease and the
    sweeper (SIGKILL, a stall) or re-enqueues itself (SIGTERM, the Spot warning); refused and drained claims
    race with the faults. Up to four tasks run (stopped ones aside), at most three executions at once."""
    driver, rng = chaos_env, chaos_env.rng
    for execution_id in driver.ids:
        executions.send(driver.factory, driver.queue, execution_id)
    env = {**driver.env, "FLOWBUILDER_WORKER_MODE": "once", "FLOWBUILDER_WORKER_MAX_RUNNING": "3"}
    driver.sweep_as(env)
    pace, parallel = Pace(EXECUTIONS), 4
    # Executions succeeding between faults (a duplicate costs a task's start-up here): a kill per 5.5 or so, a
    # stall per 8.5, a duplicate per 7.
    due = Schedule(rng, {"kill": (3, 8), "stall": (5, 12), "duplicate": (4, 10)})
    while True:
        done = driver.succeeded()
        depth = driver.depth() if done == EXECUTIONS else None
        if depth == (0, 0) and not driver.alive():
            break
        if (reason := pace.over(done, depth, len(driver.workers))) is not None:
            pytest.fail(driver.where_things_stand(reason))
        active = driver.active()
        if len(active) < parallel:
            for message in driver.queue.receive(parallel - len(active), wait=0):
                driver.queue.delete(message)  # what Pipes does once RunTask succeeds
                driver.start({**env, "FLOWBUILDER_EXECUTION_ID": message.body})
        if done < EXECUTIONS * 0.9:
            if due("kill", done):
                driver.kill_one()
            if due("stall", done):
                driver.stall_one(most=2)
        if done < EXECUTIONS and due("duplicate", done):
            driver.duplicate()
        driver.report(done)
        time.sleep(0.1)
    driver.stop_workers()
    driver.check([], pace)
