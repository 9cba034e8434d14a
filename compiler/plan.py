"""The resolved plan: spec + profile + environment -> flat, typed data that the emitters read.

Pure and deterministic: no troposphere, no boto3, no I/O. Everything an emitter needs to decide is here,
so a profile's behaviour can be tested without rendering a template (Copilot's manifest -> template data).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from . import contract
from .decisions import Decisions, decide
from .naming import pascal, queue_name, service_id, stack_name
from .profiles import ResolvedProfile
from .scalars import ENV_PLACEHOLDER
from .spec import PRODUCTION_ENVIRONMENTS, App, WebService, WorkerService


@dataclass(frozen=True)
class QueuePlan:
    name: str
    id: str  # logical-ID stem: WorkflowRequests
    physical_name: str
    dead_letter_physical_name: str
    fifo: bool
    content_based_deduplication: bool
    visibility_timeout: int
    retention: int
    delay: int
    receive_wait_time: int
    max_message_size: int
    max_receive_count: int
    dead_letter_retention: int


@dataclass(frozen=True)
class ServicePlan:
    name: str
    id: str
    kind: Literal["web", "worker"]
    role: Literal["api", "worker"] | None  # the runtime role it runs, or None for its own image
    image: str  # default of the image parameter
    image_parameter: str  # RuntimeImage for runtime roles, <Id>Image otherwise
    command: tuple[str, ...] | None
    cpu: int
    memory: int
    env: tuple[tuple[str, str], ...]  # user environment, sorted
    # (variable, reference) for every secret its containers get: the runtime's (runtime roles), then its own;
    # each part sorted, '${env}' replaced
    secrets: tuple[tuple[str, str], ...]
    stop_timeout: int
    scaling_min: int
    scaling_max: int
    target_cpu: int
    target_memory: int
    # web
    port: int | None = None
    public: bool = False
    path: str = "/"
    health_check: str = "/"
    # worker
    queue: str | None = None
    timeout: int = 0
    concurrency: int = 1


@dataclass(frozen=True)
class SchedulePlan:
    name: str
    id: str
    expression: str  # cron(...) or rate(...)
    timezone: str
    workflow: str
    input_json: str  # canonical JSON of the workflow input
    flexible_window_minutes: int  # 0: off
    max_attempts: int
    max_age: int
    enabled: bool
    description: str

    def event(self, scheduled_time: str = "<aws.scheduler.scheduled-time>") -> dict[str, Any]:
        """What the scheduler handler receives (EventBridge Scheduler fills in the placeholder on AWS)."""
        return {"type": contract.SCHEDULE_EVENT, "schedule": self.name, "workflow": self.workflow,
                "input": json.loads(self.input_json), "scheduledTime": scheduled_time}


@dataclass(frozen=True)
class DatabasePlan:
    engine_version: str
    name: str
    storage: int


@dataclass(frozen=True)
class Plan:
    app: str
    environment: str
    profile: str
    decisions: Decisions  # what the profile decides, explicitly: everything downstream reads these
    region: str
    stack_name: str
    description: str
    tags: tuple[tuple[str, str], ...]
    runtime_image: str
    runtime_env: tuple[tuple[str, str], ...]
    runtime_secrets: tuple[tuple[str, str], ...]
    runtime_queue: str | None  # where the API and the scheduler send executions
    database: DatabasePlan
    queues: tuple[QueuePlan, ...]
    services: tuple[ServicePlan, ...]
    schedules: tuple[SchedulePlan, ...]
    alert_email: str | None
    certificate_arn: str | None = None  # the HTTPS listener's certificate, when the spec names one
    production: bool = False  # prod: HTTPS only, logs kept after a stack delete

    def queue(self, name: str) -> QueuePlan:
        return next(q for q in self.queues if q.name == name)

    @property
    def web_services(self) -> tuple[ServicePlan, ...]:
        return tuple(s for s in self.services if s.kind == "web")

    @property
    def workers(self) -> tuple[ServicePlan, ...]:
        return tuple(s for s in self.services if s.kind == "worker")

    @property
    def worker_mode(self) -> str:
        """poll (a long-polling service) or once (one task per message)."""
        return self.decisions.worker_mode

    def contract_environment(self, role: str | None, service: ServicePlan | None,
                             queue_url: Callable[[str], Any]) -> list[tuple[str, Any]]:
        """The contract's variables (compiler/contract.py) for a process in `role` running `service` (None for
        the scheduler, which has no service); `queue_url` turns a queue name into its URL (a Ref in the
        template, the local endpoint's URL in `fbc up`)."""
        env: list[tuple[str, Any]] = [(contract.APP, self.app), (contract.ENVIRONMENT, self.environment)]
        if role is not None:
            env.append((contract.ROLE, role))
        worker = service is not None and service.kind == "worker"
        queue = service.queue if service is not None and worker else self.runtime_queue
        if queue is not None and (role is not None or worker):
            env.append((contract.QUEUE_URL, queue_url(queue)))
        if service is not None and self.api_base_path(service):
            env.append((contract.BASE_PATH, self.api_base_path(service)))
        if service is not None and worker:
            env += [(contract.WORKER_MODE, self.worker_mode), (contract.WORKER_TIMEOUT, str(service.timeout)),
                    (contract.WORKER_CONCURRENCY, str(service.concurrency))]
            if self.worker_mode == "once":  # the spec's max bounds running executions, not tasks (see contract)
                env.append((contract.WORKER_MAX_RUNNING, str(service.scaling_max)))
        if role == "scheduler":
            env += self._sweeper_environment()
        return env

    def _sweeper_environment(self) -> list[tuple[str, Any]]:
        """The mode of the workers that read the runtime queue, and in once mode their running limit (the largest,
        if several services read it: a task is admitted below its own): how long the sweeper waits before sending
        an unclaimed execution again, and how many it sends (runtime/executions.py queued_after and sweep)."""
        readers = [s for s in self.workers if s.role == "worker" and s.queue == self.runtime_queue]
        if not readers:
            return []
        env: list[tuple[str, Any]] = [(contract.WORKER_MODE, self.worker_mode)]
        if self.worker_mode == "once":
            env.append((contract.WORKER_MAX_RUNNING, str(max(s.scaling_max for s in readers))))
        return env

    def api_base_path(self, service: ServicePlan) -> str:
        """The path prefix the API serves under: its spec path, which the load balancer (standard) and CloudFront
        (ultra) route to it with the prefix kept; the function URL answers under the same path."""
        if service.role != "api" or service.path == "/":
            return ""
        return service.path


def _expression(cron: str | None, rate: str | None) -> str:
    if cron is not None:
        body = cron.strip()
        return body if body.startswith("cron(") else f"cron({body})"
    body = (rate or "").strip()
    return body if body.startswith("rate(") else f"rate({body})"


def _secrets(secrets: dict[str, str], environment: str) -> tuple[tuple[str, str], ...]:
    """(variable, reference) sorted, with `${env}` in each reference replaced by the environment's name."""
    return tuple(sorted((k, v.replace(ENV_PLACEHOLDER, environment)) for k, v in secrets.items()))


def schedule_plans(app: App) -> tuple[SchedulePlan, ...]:
    """The schedules of a spec merged for its environment, by name: they need no profile, so `fbc schedules`
    reads them here and shows the expressions `fbc up` fires and the template deploys."""
    return tuple(
        SchedulePlan(
            name=sc_name, id=pascal(sc_name), expression=_expression(sc.cron, sc.rate), timezone=sc.timezone,
            workflow=sc.workflow, input_json=json.dumps(sc.input, sort_keys=True, separators=(",", ":")),
            flexible_window_minutes=(sc.flexible_window + 59) // 60, max_attempts=sc.retries.max_attempts,
            max_age=sc.retries.max_age, enabled=sc.enabled, description=sc.description,
        )
        for sc_name, sc in sorted(app.spec.schedules.items())
    )


def make_plan(app: App, profile: ResolvedProfile, environment: str) -> Plan:
    """`app` is the spec already merged for `environment` (validate.Result.app)."""
    spec = app.spec
    name = app.metadata.name
    queues = tuple(
        QueuePlan(
            name=q_name, id=pascal(q_name),
            physical_name=queue_name(name, environment, q_name, dead_letter=False, fifo=q.fifo),
            dead_letter_physical_name=queue_name(name, environment, q_name, dead_letter=True, fifo=q.fifo),
            fifo=q.fifo, content_based_deduplication=q.content_based_deduplication,
            visibility_timeout=q.visibility_timeout, retention=q.retention, delay=q.delay,
            receive_wait_time=q.receive_wait_time, max_message_size=q.max_message_size,
            max_receive_count=q.dead_letter.max_receive_count, dead_letter_retention=q.dead_letter.retention,
        )
        for q_name, q in sorted(spec.queues.items())
    )
    services = []
    for s_name, s in sorted(spec.services.items()):
        common = dict(
            name=s_name, id=pascal(s_name), role=s.runtime,
            image=s.image or spec.runtime.image,
            image_parameter="RuntimeImage" if s.runtime else service_id(s_name, "Image"),
            command=tuple(s.command) if s.command else None, cpu=s.cpu, memory=s.memory,
            env=tuple(sorted(s.env.items())),
            secrets=(_secrets(spec.runtime.secrets, environment) if s.runtime else ())
            + _secrets(s.secrets, environment),
            stop_timeout=s.stop_timeout, scaling_min=s.scaling.min, scaling_max=s.scaling.max,
            target_cpu=s.scaling.target_cpu, target_memory=s.scaling.target_memory,
        )
        if isinstance(s, WebService):
            services.append(ServicePlan(kind="web", port=s.port, public=s.public, path=s.path,
                                        health_check=s.health_check, **common))
        else:
            assert isinstance(s, WorkerService)
            services.append(ServicePlan(kind="worker", queue=s.queue, timeout=s.timeout,
                                        concurrency=s.concurrency, **common))
    schedules = schedule_plans(app)
    runtime_queues = spec.runtime_queues()
    tags = tuple(sorted({**app.metadata.labels, "app": name, "environment": environment,
                         "profile": profile.name, "managed-by": "flowbuilder"}.items()))
    return Plan(
        app=name, environment=environment, profile=profile.name, decisions=decide(profile.spec),
        region=spec.region,
        stack_name=stack_name(name, environment),
        description=(app.metadata.description or f"Flow Builder application {name}")[:900],
        tags=tags, runtime_image=spec.runtime.image, runtime_env=tuple(sorted(spec.runtime.env.items())),
        runtime_secrets=_secrets(spec.runtime.secrets, environment),
        runtime_queue=runtime_queues[0] if runtime_queues else None,
        database=DatabasePlan(engine_version=spec.database.version, name=spec.database.name,
                              storage=spec.database.storage),
        queues=queues, services=tuple(services), schedules=schedules, alert_email=spec.alerts.email,
        certificate_arn=spec.https.certificate_arn, production=environment in PRODUCTION_ENVIRONMENTS,
    )
