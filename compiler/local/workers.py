"""Workers as the profile dispatches them, on the local queue.

- autoscaled-service (standard): a pool of `poll` processes between the spec's min and max, sized by the
  same rules as the emitted alarms (compiler/scaling.py): while messages are visible, the backlog step's
  exact count; when nothing is visible or in flight for EMPTY_SECONDS, the minimum. A process that exits
  is replaced, as ECS keeps a service at its desired count. The alarms' five empty minutes are seconds
  here, so a local pool visibly scales to zero. Each process has its own ECS_AGENT_URI on a local agent
  stand-in (agent.py) and protects itself while it holds an execution; scale-in stops only unprotected
  processes, newest first, and keeps the others until they are idle, as ECS does.
- pipe (ultra): one `once` process per message, its body in FLOWBUILDER_EXECUTION_ID, the message deleted
  once the process started, as EventBridge Pipes deletes it once RunTask succeeds. Pipes has no concurrency
  limit and neither has this stand-in, beyond a safety cap for a laptop: the spec's scaling max bounds
  running executions in the runtime (FLOWBUILDER_WORKER_MAX_RUNNING), and a refused process exits at once.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Callable

from .. import contract
from ..plan import ServicePlan
from ..scaling import capacity_for_backlog
from .agent import LocalAgent
from .processes import Child, Logs, stop_all
from .sqs import LocalSqs

EMPTY_SECONDS = 15.0
TICK = 1.0
PIPE_SAFETY_CAP = 32  # once processes alive at once; not the spec's max, which the runtime enforces

Launch = Callable[[str, dict[str, str]], Child]  # (component name, extra environment) -> a started child


class PollPool:
    def __init__(self, worker: ServicePlan, queue_url: str, sqs: LocalSqs, launch: Launch, logs: Logs) -> None:
        self.worker, self.queue_url, self.sqs, self.launch, self.logs = worker, queue_url, sqs, launch, logs
        self.children: list[Child] = []  # newest last
        self.draining: list[Child] = []  # told to stop, finishing their current steps
        self.desired = worker.scaling_min
        self.empty_since: float | None = None
        self.agent: LocalAgent | None = None  # started by run()
        self.tasks: dict[str, str] = {}  # child name -> its task on the agent
        self._kept: list[str] = []  # protected children kept beyond the desired count
        self._numbers = itertools.count(1)

    def decide(self, visible: int, in_flight: int, moment: float) -> int:
        """The desired count after one look at the queue (the two alarms' rules)."""
        if visible > 0:
            self.empty_since = None
            return capacity_for_backlog(self.worker, visible)
        if in_flight > 0:
            self.empty_since = None
            return self.desired
        if self.empty_since is None:
            self.empty_since = moment
        return self.worker.scaling_min if moment - self.empty_since >= EMPTY_SECONDS else self.desired

    def tick(self, moment: float) -> None:
        for child in [c for c in self.children if not c.running()]:
            self.children.remove(child)
            self.logs.line(self.worker.name, f"{child.name} exited with code {child.process.returncode}")
        self.draining = [c for c in self.draining if c.running()]
        visible, in_flight = self.sqs.depth(self.queue_url)
        desired = max(self.worker.scaling_min, min(self.worker.scaling_max, self.decide(visible, in_flight, moment)))
        if desired != self.desired:
            self.logs.line(self.worker.name, f"scaling {self.desired} -> {desired} ({visible} visible, "
                                             f"{in_flight} in flight)")
            self.desired = desired
        while len(self.children) < self.desired:
            self.children.append(self._launch())
        self._scale_in(len(self.children) - self.desired)

    def _launch(self) -> Child:
        number = next(self._numbers)
        name = f"{self.worker.name}#{number}"
        extra = {"ECS_AGENT_URI": self.agent.uri(str(number))} if self.agent is not None else {}
        self.tasks[name] = str(number)
        return self.launch(name, extra)

    def protected(self, child: Child) -> bool:
        return self.agent is not None and self.agent.protected(self.tasks.get(child.name, ""))

    def _scale_in(self, excess: int) -> None:
        """Stop `excess` processes, newest first, only unprotected ones; the protected wait until idle."""
        for child in [c for c in reversed(self.children) if not self.protected(c)][:max(0, excess)]:
            self.children.remove(child)
            child.terminate()
            self.draining.append(child)
        kept = [c.name for c in self.children[self.desired:]] if len(self.children) > self.desired else []
        if kept and kept != self._kept:
            self.logs.line(self.worker.name, f"scale-in: {', '.join(kept)} protected (running an execution), "
                                             f"kept until idle")
        self._kept = kept

    def run(self, stop: threading.Event) -> None:
        self.agent = LocalAgent()
        self.agent.start()
        try:
            while not stop.wait(TICK):
                try:
                    self.tick(time.monotonic())
                except Exception as exc:  # the local queue hiccuped: look again next tick
                    self.logs.line(self.worker.name, f"scaling check failed: {type(exc).__name__}: {exc}")
        finally:
            stop_all(self.children + self.draining, self.worker.stop_timeout)
            self.agent.stop()


class PipeDispatcher:
    def __init__(self, worker: ServicePlan, queue_url: str, sqs: LocalSqs, launch: Launch, logs: Logs) -> None:
        self.worker, self.queue_url, self.sqs, self.launch, self.logs = worker, queue_url, sqs, launch, logs
        self.running: list[Child] = []
        self.cap = PIPE_SAFETY_CAP
        self._numbers = itertools.count(1)

    def reap(self) -> None:
        for child in [c for c in self.running if not c.running()]:
            self.running.remove(child)
            if child.process.returncode:
                self.logs.line(self.worker.name, f"{child.name} exited with code {child.process.returncode}")

    def run(self, stop: threading.Event) -> None:
        try:
            while not stop.is_set():
                self.reap()
                if len(self.running) >= self.cap:
                    stop.wait(0.2)
                    continue
                try:
                    found = self.sqs.sqs.receive_message(QueueUrl=self.queue_url, MaxNumberOfMessages=1,
                                                         WaitTimeSeconds=1).get("Messages", [])
                except Exception as exc:  # as Pipes does: keep polling
                    self.logs.line(self.worker.name, f"receive failed: {type(exc).__name__}: {exc}")
                    stop.wait(1)
                    continue
                for message in found:
                    if stop.is_set():
                        break  # not started: the message becomes visible again for the next run
                    child = self.launch(f"{self.worker.name}#{next(self._numbers)}",
                                        {contract.EXECUTION_ID: message["Body"]})
                    self.running.append(child)
                    self.sqs.sqs.delete_message(QueueUrl=self.queue_url, ReceiptHandle=message["ReceiptHandle"])
        finally:
            stop_all(self.running, self.worker.stop_timeout)


DISPATCHERS: dict[str, type[PollPool] | type[PipeDispatcher]] = {
    "autoscaled-service": PollPool,
    "pipe": PipeDispatcher,
}
