"""The flowbuilder.yaml spec as pydantic models: the single source of truth for validation and the schema.

Field names are Python snake_case; the YAML keys are their camelCase aliases (Kubernetes style).
Models are strict (no "8000" for 8000) and forbid unknown keys (Copilot ignores them silently; we do not).
Constraints that JSON Schema cannot express live in compiler/checks/.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any, Literal, TypeAlias, get_args

from pydantic import BaseModel, ConfigDict, Field, create_model, model_validator
from pydantic.alias_generators import to_camel
from pydantic_core import PydanticCustomError

from .scalars import (
    CertificateArn,
    DbName,
    Duration,
    EnvName,
    HttpPath,
    ImageUri,
    LabelKey,
    LabelValue,
    Name,
    Port,
    Region,
    SecretRef,
)

ApiVersion = Literal["flowbuilder.dev/v1alpha1"]  # of the spec and of profiles; said once
API_VERSION: str = get_args(ApiVersion)[0]
# The spec's maps of named entries: what environments override by name and what logical IDs are made from.
# A new kind of entry is added here, to AppSpec and to Environment (a test checks the three agree).
NAMED_KINDS = ("services", "queues", "schedules")
FARGATE_CPU = Literal[256, 512, 1024, 2048, 4096, 8192, 16384]


class Model(BaseModel):
    model_config = ConfigDict(
        strict=True,
        extra="forbid",
        frozen=True,
        alias_generator=to_camel,
        populate_by_name=True,
        use_attribute_docstrings=False,
    )


Env = Annotated[
    dict[EnvName, str],
    Field(description="Environment variables, as strings (quote numbers and booleans).",
          examples=[{"LOG_LEVEL": "info"}]),
]
Secrets = Annotated[
    dict[EnvName, SecretRef],
    Field(description="Environment variables filled from secrets at start-up: an SSM parameter name "
                      "('/app/prod/api-key') or a Secrets Manager or SSM parameter ARN. Never the value. "
                      "'${env}' in a reference is replaced by the environment's name, so environments do not "
                      "share secrets.",
          examples=[{"API_KEYS": "/flow-builder/${env}/api-keys"}]),
]
# Environments whose load balancer must serve HTTPS: bearer API keys never cross the internet in cleartext.
PRODUCTION_ENVIRONMENTS = ("prod", "production")


class Metadata(Model):
    """Identifies the application; the name prefixes every stack and resource."""

    name: Name = Field(description="Application name (DNS label, 1-32 characters); stack names are "
                                   "'<name>-<environment>'.", examples=["flow-builder"])
    labels: dict[LabelKey, LabelValue] = Field(
        default_factory=dict, description="Key/value labels, applied as tags to every taggable resource.",
        examples=[{"team": "platform"}])
    description: str = Field("", max_length=1024, description="Free text describing the application.")


class Runtime(Model):
    """The Flow Builder runtime image: API, worker and scheduler Lambda all run it."""

    image: ImageUri = Field(description="Container image of the Flow Builder runtime. The scheduler Lambda "
                                        "runs it too, so it must be in Amazon ECR.",
                            examples=["123456789012.dkr.ecr.us-east-1.amazonaws.com/flow-builder-runtime:1.0.0"])
    env: Env = Field(default_factory=dict)
    secrets: Secrets = Field(default_factory=dict)


class Database(Model):
    """The application's PostgreSQL database (RDS in the standard profile, external in ultra)."""

    engine: Literal["postgres"] = Field("postgres", description="Database engine; PostgreSQL only.")
    version: Literal["13", "14", "15", "16", "17", "18"] = Field(
        "16", description="PostgreSQL major version, as a string (\"16\", not 16).")
    name: DbName = Field("flowbuilder", description="Name of the database the runtime connects to.")
    storage: int = Field(20, ge=20, le=65536, description="Allocated storage in GiB (RDS, standard profile).")


class DeadLetter(Model):
    """Where messages go after failing maxReceiveCount times."""

    max_receive_count: int = Field(5, ge=1, le=1000, description="Receives before a message moves to the "
                                                                 "dead-letter queue.")
    retention: Duration(60, 14 * 86400) = Field(  # type: ignore[valid-type]
        14 * 86400, description="How long the dead-letter queue keeps messages (60s to 14d).")


class Queue(Model):
    """An SQS queue; every queue gets a dead-letter queue and a redrive policy."""

    fifo: bool = Field(False, description="A FIFO queue: exactly-once processing, ordered per message group.")
    content_based_deduplication: bool = Field(
        False, description="FIFO only: deduplicate on a SHA-256 of the body instead of a deduplication ID.")
    visibility_timeout: Duration(0, 43200) = Field(  # type: ignore[valid-type]
        900, description="How long a received message stays hidden (0 to 12h). Must not be shorter than the "
                         "timeout of the worker that consumes the queue.", examples=["15m"])
    retention: Duration(60, 14 * 86400) = Field(  # type: ignore[valid-type]
        4 * 86400, description="How long SQS keeps a message (60s to 14d).", examples=["4d"])
    delay: Duration(0, 900) = Field(  # type: ignore[valid-type]
        0, description="Delivery delay of every message (0 to 15m).")
    receive_wait_time: Duration(0, 20) = Field(  # type: ignore[valid-type]
        20, description="Long-polling wait of ReceiveMessage (0 to 20s); 20s keeps empty receives cheap.")
    max_message_size: int = Field(262144, ge=1024, le=262144,
                                  description="Largest message in bytes (1024 to 262144).")
    dead_letter: DeadLetter = Field(default_factory=DeadLetter,
                                    description="The dead-letter queue and its redrive policy.")


class Scaling(Model):
    """Task count bounds and target tracking, shared by web services and workers (which differ in min)."""

    min: int = Field(0, ge=0, le=1000, description="Fewest running tasks.")
    max: int = Field(1, ge=1, le=1000, description="Most running tasks.")
    target_cpu: int = Field(70, ge=1, le=100, description="Average CPU utilisation (%) to track between min "
                                                          "and max.")
    target_memory: int = Field(80, ge=1, le=100, description="Average memory utilisation (%) to track.")

    @model_validator(mode="after")
    def _bounds(self) -> Scaling:
        _check_bounds(self.min, self.max)
        return self


class WebScaling(Scaling):
    """Task count bounds and target tracking of a web service."""

    min: int = Field(1, ge=0, le=1000, description="Fewest running tasks.")


class WorkerScaling(Scaling):
    """Task count bounds of a worker; with min 0 it scales to zero on an empty queue."""

    min: int = Field(0, ge=0, le=1000, description="Fewest running tasks; 0 scales to zero when the queue "
                                                   "is empty.")


def _check_bounds(low: int, high: int) -> None:
    if low > high:
        raise PydanticCustomError("scaling_bounds", "min ({low}) is greater than max ({high})",
                                  {"low": low, "high": high})


class ServiceBase(Model):
    image: ImageUri | None = Field(None, description="Container image to run. Give either image or runtime.",
                                   examples=["123456789012.dkr.ecr.us-east-1.amazonaws.com/frontend:1.0.0"])
    cpu: FARGATE_CPU = Field(256, description="Fargate CPU units (1024 = 1 vCPU).")
    memory: int = Field(512, ge=512, le=122880,
                        description="Memory in MiB; must be a valid Fargate pair with cpu "
                                    "(256: 512-2048, 512: 1024-4096, 1024: 2048-8192, ...).")
    env: Env = Field(default_factory=dict)
    secrets: Secrets = Field(default_factory=dict)
    command: list[str] | None = Field(None, min_length=1,
                                      description="Overrides the image's command (exec form).",
                                      examples=[["python", "-m", "app"]])
    stop_timeout: Duration(2, 120) = Field(  # type: ignore[valid-type]
        30, description="Time between SIGTERM and SIGKILL (2s to 120s; Fargate Spot warns 2 minutes ahead).")

    @model_validator(mode="after")
    def _image_or_runtime(self) -> ServiceBase:
        runtime = getattr(self, "runtime", None)
        if (self.image is None) == (runtime is None):
            raise PydanticCustomError("image_or_runtime", "give exactly one of 'image' and 'runtime'")
        return self


class WebService(ServiceBase):
    """A long-running HTTP service (the API, the frontend)."""

    type: Literal["web"] = Field(description="web: serves HTTP on a port; worker: consumes a queue.")
    runtime: Literal["api"] | None = Field(None, description="Run the Flow Builder runtime in this role "
                                                             "instead of an image.")
    port: Port = Field(description="Container port that serves HTTP.", examples=[8000])
    public: bool = Field(False, description="Reachable from the internet (load balancer or function URL).")
    path: HttpPath = Field("/", description="Path prefix the load balancer routes to this service (standard "
                                            "profile); '/' is the default route. Requests keep the prefix.",
                           examples=["/api"])
    health_check: HttpPath = Field("/", description="HTTP path that answers 2xx when the service is healthy.",
                                   examples=["/healthz"])
    scaling: WebScaling = Field(default_factory=WebScaling, description="Task count and autoscaling targets.")


class WorkerService(ServiceBase):
    """A queue consumer: scales to zero (standard) or runs one task per message (ultra)."""

    type: Literal["worker"] = Field(description="web: serves HTTP on a port; worker: consumes a queue.")
    runtime: Literal["worker"] | None = Field(None, description="Run the Flow Builder runtime in this role "
                                                                "instead of an image.")
    queue: Name = Field(description="Name of the queue (under spec.queues) this worker consumes.")
    timeout: Duration(1, 43200) = Field(  # type: ignore[valid-type]
        900, description="Longest time one execution may take (1s to 12h).", examples=["10m"])
    concurrency: int = Field(1, ge=1, le=100, description="Executions one task runs at once (poll mode).")
    scaling: WorkerScaling = Field(default_factory=WorkerScaling,
                                   description="Task count bounds and autoscaling targets.")


Service = Annotated[WebService | WorkerService, Field(discriminator="type")]


class Retries(Model):
    """How EventBridge Scheduler retries a failed invocation."""

    max_attempts: int = Field(3, ge=0, le=185, description="Retries after a failed invocation (0 to 185).")
    max_age: Duration(60, 86400) = Field(  # type: ignore[valid-type]
        3600, description="Give up on an event older than this (60s to 24h).")


class Schedule(Model):
    """Starts a workflow on a cron or rate expression, through the scheduler Lambda."""

    cron: str | None = Field(None, description="AWS cron expression, six fields: minutes hours day-of-month "
                                               "month day-of-week year; one of the two day fields is '?'.",
                             examples=["0 3 * * ? *"])
    rate: str | None = Field(None, description="AWS rate expression: 'N unit', unit one of minute(s), "
                                               "hour(s), day(s); singular for 1.",
                             examples=["5 minutes", "1 hour"])
    timezone: str = Field("UTC", description="IANA time zone the cron expression is read in.",
                          examples=["Europe/Berlin"])
    workflow: Name = Field(description="Name of the workflow to start.")
    input: dict[str, Any] = Field(default_factory=dict, description="JSON object handed to the workflow.")
    flexible_window: Duration(0, 86400) = Field(  # type: ignore[valid-type]
        0, description="Let Scheduler start up to this much later to spread load (0 = exactly on time).")
    retries: Retries = Field(default_factory=Retries, description="Retry policy of the invocation.")
    enabled: bool = Field(True, description="A disabled schedule is deployed but does not fire.")
    description: str = Field("", max_length=512, description="What the schedule is for.")

    @model_validator(mode="after")
    def _one_expression(self) -> Schedule:
        if (self.cron is None) == (self.rate is None):
            raise PydanticCustomError("cron_or_rate", "give exactly one of 'cron' and 'rate'")
        return self


class Https(Model):
    """HTTPS on the load balancer (standard profile)."""

    certificate_arn: CertificateArn | None = Field(
        None, description="ACM certificate, in the stack's region, for the HTTPS listener; HTTP then redirects "
                          "to HTTPS. Required in prod (here, in the prod overlay, or as the CertificateArn "
                          "parameter at deploy time); dev and staging may serve plain HTTP without one.",
        examples=["arn:aws:acm:us-east-1:123456789012:certificate/0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0"])


class Alerts(Model):
    """Where alarm notifications go."""

    email: str | None = Field(None, pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$",
                              description="Address subscribed to the alert topic (confirms by email).")


# --- Environment overlays: the base's fields, every one optional (Copilot's environments block). ------------

def partial(name: str, doc: str, fields: dict[str, type[Model]], *, nested: dict[str, type[Model]] | None = None,
            described: dict[str, str] | None = None) -> type[Model]:
    """An overlay model: the named fields of their base models, each optional (None keeps the base's value),
    with the base's type, constraints and description, so an overlay accepts exactly what the base accepts and
    cannot drift from it. `nested` gives a model-valued field its own overlay; `described` rewords a field whose
    overlay means more than a replacement (maps merge over the base)."""
    made: dict[str, Any] = {}
    for field, base in fields.items():
        info = base.model_fields[field]
        inner: Any = (nested or {}).get(field) or (
            Annotated[(info.annotation, *info.metadata)] if info.metadata else info.annotation)
        made[field] = (inner | None, Field(None, description=(described or {}).get(field, info.description)))
    return create_model(name, __base__=Model, __doc__=doc, **made)


def _lower(text: str | None) -> str:
    return (text or "")[:1].lower() + (text or "")[1:]


if TYPE_CHECKING:  # mypy sees the overlays as models; their fields are only ever dumped and merged
    ScalingOverlay: TypeAlias = Model
    ServiceOverlay: TypeAlias = Model
    QueueOverlay: TypeAlias = Model
    ScheduleOverlay: TypeAlias = Model
    DatabaseOverlay: TypeAlias = Model
else:
    ScalingOverlay = partial("ScalingOverlay", "Scaling fields to override in one environment.",
                             dict.fromkeys(("min", "max", "target_cpu", "target_memory"), Scaling))
    ServiceOverlay = partial(
        "ServiceOverlay", "Service fields to override in one environment.",
        {**dict.fromkeys(("image", "cpu", "memory", "env", "secrets", "command"), ServiceBase),
         "public": WebService, "health_check": WebService, "timeout": WorkerService,
         "concurrency": WorkerService, "scaling": WebService},
        nested={"scaling": ScalingOverlay},
        described={"image": "Container image to run in this environment.",
                   "env": "Environment variables merged over the base.",
                   "secrets": "Secret references merged over the base.",
                   **{field: f"{kind}: {_lower(base.model_fields[field].description)}" for field, kind, base in (
                       ("public", "Web services", WebService), ("health_check", "Web services", WebService),
                       ("timeout", "Workers", WorkerService), ("concurrency", "Workers", WorkerService))}})
    QueueOverlay = partial("QueueOverlay", "Queue fields to override in one environment.",
                           dict.fromkeys(("visibility_timeout", "retention", "delay"), Queue))
    ScheduleOverlay = partial("ScheduleOverlay", "Schedule fields to override in one environment.",
                              dict.fromkeys(("enabled", "cron", "rate", "timezone", "input"), Schedule),
                              described={"input": "JSON object merged over the base input."})
    DatabaseOverlay = partial("DatabaseOverlay", "Database fields to override in one environment.",
                              {"storage": Database})


ProfileRef = Annotated[str, Field(
    min_length=1, max_length=1024, pattern=r"^\S+$",
    description="How the application becomes AWS resources: a built-in profile (standard, ultra) or a path to a "
                "profile file, relative to this spec. `--profile` overrides it (and says so).",
    examples=["standard", "ultra"])]


class Environment(Model):
    """Per-environment overrides, deep-merged over the base spec (maps merge, lists replace)."""

    profile: ProfileRef | None = Field(None, description="The profile of this environment, over spec.profile "
                                                          "(e.g. ultra for dev, standard for prod).")

    services: dict[Name, ServiceOverlay] = Field(default_factory=dict, description="Service overrides by name.")
    queues: dict[Name, QueueOverlay] = Field(default_factory=dict, description="Queue overrides by name.")
    schedules: dict[Name, ScheduleOverlay] = Field(default_factory=dict,
                                                   description="Schedule overrides by name.")
    database: DatabaseOverlay | None = Field(None, description="Database overrides.")
    alerts: Alerts | None = Field(None, description="Alert overrides.")
    https: Https | None = Field(None, description="HTTPS overrides (a certificate per environment).")


class AppSpec(Model):
    """What the application is made of."""

    region: Region = Field(description="AWS region to deploy to.", examples=["us-east-1", "eu-central-1"])
    profile: ProfileRef | None = Field(None, description="The profile of every environment that names none "
                                                         "(default: standard). A built-in name or a path.")
    runtime: Runtime = Field(description="The Flow Builder runtime image that roles run.")
    database: Database = Field(default_factory=Database, description="The PostgreSQL database.")
    queues: dict[Name, Queue] = Field(default_factory=dict, description="SQS queues by name.")
    services: dict[Name, Service] = Field(default_factory=dict, description="Web services and workers by name.")
    schedules: dict[Name, Schedule] = Field(default_factory=dict, description="Scheduled workflows by name.")
    alerts: Alerts = Field(default_factory=Alerts, description="Alarm notification settings (SNS topic).")
    https: Https = Field(default_factory=Https, description="The load balancer's HTTPS certificate (standard "
                                                            "profile); required in prod.")
    environments: dict[Name, Environment] = Field(
        default_factory=dict, description="Per-environment overrides (dev, staging, prod, ...).")

    def runtime_queues(self) -> list[str]:
        """The queues runtime workers consume, sorted: where the API and the scheduler send executions (the
        plan takes the one there may be; validation refuses more than one)."""
        return sorted({s.queue for s in self.services.values()
                       if isinstance(s, WorkerService) and s.runtime == "worker"})


class App(Model):
    """A Flow Builder application (flowbuilder.yaml)."""

    api_version: ApiVersion = Field(description="Version of this spec format.")
    kind: Literal["App"] = Field(description="Kind of document; always App.")
    metadata: Metadata = Field(description="Name and labels of the application.")
    spec: AppSpec = Field(description="Services, queues, schedules and database of the application.")
