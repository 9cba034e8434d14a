"""`fbc up`: start the application's parts in order, wait, stop them in reverse order.

plan (the same one the templates come from) -> state directory and lock -> SQS endpoint with the spec's
queues -> database migrated, unfinished executions sent again -> API processes (ready) -> workers as the
profile dispatches them -> schedules and the sweeper. Stop: schedules, workers (SIGTERM: they finish the
current step and release the rest), APIs, the queue endpoint.

The local queue lives in memory and the database does not: at start every unfinished execution is released
and sent again, so a restart completes what a stop interrupted. `fbc up` therefore owns its database: give
--database-url only for a database no deployed worker uses.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import secrets
import socket
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .. import contract
from ..plan import Plan, ServicePlan
from .processes import Child, Logs, stop_all
from .schedules import Scheduler
from .sqs import CREDENTIALS, LocalSqs
from .workers import DISPATCHERS

READY_TIMEOUT = 60.0
LOCAL_ENV = {
    contract.HOST: "127.0.0.1",  # nothing listens beyond this machine
    contract.POLL_WAIT: "1",  # short long-polls, so a stopping worker notices within a second
    "PYTHONUNBUFFERED": "1",
}


class UpError(Exception):
    """A reason `fbc up` cannot start, said in one line."""


@dataclass(frozen=True)
class Options:
    spec_file: Path
    database_url: str | None = None
    port: int = 8000
    smoke: bool = False


@dataclass
class Api:
    service: ServicePlan
    port: int
    child: Child | None = None

    def url(self, plan: Plan) -> str:
        return f"http://127.0.0.1:{self.port}{plan.api_base_path(self.service)}"


@contextlib.contextmanager
def state_directory(options: Options) -> Iterator[Path]:
    """.flowbuilder/ beside the spec, locked against a second `fbc up`; --smoke uses a throwaway one."""
    if options.smoke:
        with tempfile.TemporaryDirectory(prefix="fbc-smoke-") as tmp:
            yield Path(tmp)
        return
    state = options.spec_file.resolve().parent / ".flowbuilder"
    state.mkdir(mode=0o700, parents=True, exist_ok=True)  # the database and the API key: yours alone
    with open(state / "up.lock", "a+") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise UpError(f"fbc up is already running for {state} (stop it first)") from None
        yield state


def api_key(state: Path) -> str:
    """FLOWBUILDER_API_KEYS's first key, else the one kept in .flowbuilder/api-key (0600), made once."""
    given = [k.strip() for k in os.environ.get(contract.API_KEYS, "").split(",") if k.strip()]
    if given:
        return given[0]
    path = state / "api-key"
    with contextlib.suppress(FileNotFoundError):
        return path.read_text().strip()
    key = secrets.token_urlsafe(32)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w") as handle:
        handle.write(key + "\n")
    return key


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def check_port(port: int) -> None:
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            raise UpError(f"port {port} on 127.0.0.1 is in use: pass --port") from None


def shown(database_url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(database_url).render_as_string(hide_password=True)


@dataclass
class Environment:
    """What every child gets: the caller's environment without AWS settings or ECS_AGENT_URI (nothing local
    reaches AWS; the standard pool gives its processes a local agent), the local endpoint and credentials,
    the contract's variables, the spec's runtime environment."""

    plan: Plan
    endpoint: str
    database_url: str
    key: str
    queue_urls: dict[str, str]
    extra: dict[str, str] = field(default_factory=dict)

    def for_role(self, role: str, service: ServicePlan | None = None) -> dict[str, str]:
        """The contract's variables as the templates set them (Plan.contract_environment), with local values."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_") and k != "ECS_AGENT_URI"}
        env.update({**CREDENTIALS, **LOCAL_ENV, **self.extra})
        env.update({"AWS_REGION": self.plan.region, "AWS_DEFAULT_REGION": self.plan.region,
                    "AWS_ENDPOINT_URL": self.endpoint, contract.DATABASE_URL: self.database_url,
                    contract.API_KEYS: self.key})
        env.update(self.plan.contract_environment(role, service, self.queue_urls.__getitem__))
        env.update(self.plan.runtime_env)
        if service is not None:
            env.update(service.env)
        return env


def missing_secrets(plan: Plan) -> list[str]:
    """Secrets the spec reads from SSM or Secrets Manager: locally they come from the caller's environment.
    API_KEYS is covered by the generated key."""
    names = {name for name, _ in plan.runtime_secrets}
    names |= {name for s in plan.services if s.role for name, _ in s.secrets}
    return sorted(n for n in names if n != "API_KEYS" and n not in os.environ)


class Up:
    def __init__(self, plan: Plan, options: Options, logs: Logs, stop: threading.Event) -> None:
        self.plan, self.options, self.logs = plan, options, logs
        self.stop = stop  # set by a signal (Ctrl-C, SIGTERM) or at the end of --smoke
        self.sqs = LocalSqs(plan.region)
        apis = [s for s in plan.web_services if s.role == "api"]
        self.apis = [Api(s, options.port + i if options.port else free_port()) for i, s in enumerate(apis)]
        self.workers = [s for s in plan.workers if s.role == "worker"]
        self.threads: list[threading.Thread] = []

    def say(self, text: str) -> None:
        self.logs.line("fbc", text)

    def run(self) -> int:
        if self.options.smoke and not (self.apis and self.workers):
            raise UpError("--smoke needs a service with runtime: api and one with runtime: worker")
        for api in self.apis:
            check_port(api.port)
        with state_directory(self.options) as state:
            from flowbuilder.runtime import local as runtime

            default = state / f"{self.plan.app}-{self.plan.environment}.sqlite3"
            database_url = runtime.database_url(self.options.database_url or f"sqlite:///{default}")
            key = api_key(state)
            try:
                return self._run(database_url, key)
            finally:
                self._stop_all()

    def _run(self, database_url: str, key: str) -> int:
        plan = self.plan
        endpoint = self.sqs.start()
        queue_urls = {q.name: self.sqs.create(q) for q in plan.queues}
        self.say(f"sqs: {len(queue_urls)} queue(s) with dead-letter queues at {endpoint}")
        recovered = self._prepare_database(database_url, queue_urls)
        self.say(f"database: {shown(database_url)} migrated"
                 + (f"; {recovered} unfinished execution(s) sent again" if recovered else ""))
        env = Environment(plan, endpoint, database_url, key, queue_urls)
        with contextlib.ExitStack() as stack:
            echo_url = ""
            if self.options.smoke:
                from .smoke import echo_server

                echo_url = stack.enter_context(echo_server())
                allow = os.environ.get(contract.HTTP_ALLOWLIST, "")
                env.extra[contract.HTTP_ALLOWLIST] = ",".join(filter(None, [allow, "127.0.0.1/32"]))
            self._start(env)
            self._summary(database_url, key)
            if self.options.smoke:
                return self._smoke(key, echo_url)
            self._wait(env)
        return 0

    def _prepare_database(self, database_url: str, queue_urls: dict[str, str]) -> int:
        from flowbuilder.runtime import local as runtime

        try:
            runtime.prepare(database_url)
        except Exception as exc:  # a wrong URL, a server that is down: one line, not a traceback
            raise UpError(f"database {shown(database_url)}: {type(exc).__name__}: {str(exc).splitlines()[0]}") \
                from None
        if self.plan.runtime_queue is None:
            return 0
        return runtime.recover(database_url, queue_urls[self.plan.runtime_queue], self.sqs.sqs)

    def _command(self, role: str) -> list[str]:
        return [sys.executable, *contract.COMMANDS[role][1:]]

    def _start_api(self, api: Api, env: Environment) -> None:
        variables = env.for_role("api", api.service)
        variables[contract.PORT] = str(api.port)
        api.child = Child(api.service.name, self._command("api"), variables, self.logs)
        deadline = time.monotonic() + READY_TIMEOUT
        import httpx

        while time.monotonic() < deadline:
            if not api.child.running():
                raise UpError(f"{api.service.name} exited with code {api.child.process.returncode} while starting "
                              f"(its log is above)")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{api.url(self.plan)}/readyz", timeout=2).status_code == 200:
                    return
            time.sleep(0.2)
        raise UpError(f"{api.service.name} was not ready within {READY_TIMEOUT:.0f} s")

    def _start(self, env: Environment) -> None:
        for api in self.apis:
            self._start_api(api, env)
        for worker in self.workers:
            assert worker.queue is not None

            def launch(name: str, extra: dict[str, str], worker: ServicePlan = worker) -> Child:
                return Child(name, self._command("worker"), {**env.for_role("worker", worker), **extra}, self.logs)

            dispatcher = DISPATCHERS[self.plan.decisions.worker_dispatch](
                worker, env.queue_urls[worker.queue], self.sqs, launch, self.logs)
            self._thread(f"dispatch-{worker.name}", dispatcher.run)
        if self.plan.runtime_queue is not None:
            scheduler_env = env.for_role("scheduler")

            def invoke(event: dict[str, Any]) -> Child:
                return Child("scheduler", [sys.executable, "-m", "flowbuilder.runtime.scheduler"], scheduler_env,
                             self.logs, stdin=json.dumps(event))

            self._thread("scheduler", Scheduler(self.plan, invoke, self.logs).run)

    def _thread(self, name: str, target: Callable[[threading.Event], None]) -> None:
        thread = threading.Thread(target=target, args=(self.stop,), name=name, daemon=True)
        thread.start()
        self.threads.append(thread)

    def _summary(self, database_url: str, key: str) -> None:
        plan = self.plan
        self.say(f"{plan.app} ({plan.environment}) is up, {plan.profile} profile")
        for api in self.apis:
            self.say(f"  {api.service.name}: {api.url(plan)}  (Authorization: Bearer <key>)")
        if self.apis:
            self.say(f"  API key: {key}")
        for worker in self.workers:
            how = (f"poll processes, {worker.scaling_min}..{worker.scaling_max} on queue depth"
                   if plan.worker_mode == "poll" else f"one process per message, at most {worker.scaling_max} "
                                                      f"executions at once")
            self.say(f"  {worker.name}: {how} ({worker.queue})")
        for schedule in plan.schedules:
            state = "" if schedule.enabled else f" - disabled in {plan.environment}"
            self.say(f"  schedule {schedule.name}: {schedule.expression} {schedule.timezone}{state}")
        for service in plan.services:
            if service.role is None:
                self.say(f"  {service.name}: not run locally (its own image, {service.image})")
        for name in missing_secrets(plan):
            self.say(f"  secret {name}: not set in this environment (on AWS it comes from its store)")
        self.say("Ctrl-C stops everything; state is kept in the database for the next fbc up")

    def _smoke(self, key: str, echo_url: str) -> int:
        from .smoke import passed, run

        execution = run(self.apis[0].url(self.plan), key, echo_url, cancelled=self.stop.is_set)
        steps = ", ".join(f"{s['step']} {s['status']}" for s in execution.get("steps", []))
        self.say(f"smoke: execution {execution['id']} {execution['state']} ({steps}); output "
                 f"{execution.get('output')}")
        ok = passed(execution)
        self.say("smoke: passed" if ok else f"smoke: FAILED {execution.get('error') or ''}")
        return 0 if ok else 1

    def _wait(self, env: Environment) -> None:
        while not self.stop.wait(1.0):
            for api in self.apis:  # ECS replaces a task that exits; so does fbc up
                if api.child is not None and not api.child.running():
                    self.say(f"{api.service.name} exited with code {api.child.process.returncode}; restarting")
                    self._start_api(api, env)

    def _stop_all(self) -> None:
        self.say("stopping")
        self.stop.set()
        longest = max([s.stop_timeout for s in self.plan.services] + [10])
        for thread in self.threads:  # schedules first, then workers: each stops its own children
            thread.join(longest + 5)
        stop_all([a.child for a in self.apis if a.child is not None], longest)
        self.sqs.stop()
        self.say("stopped")


def up(plan: Plan, options: Options, logs: Logs, stop: threading.Event) -> int:
    """Run until `stop` is set (or --smoke is done); the exit code. Raises UpError."""
    return Up(plan, options, logs, stop).run()
