"""What a build records in its template's Metadata (`Metadata: {FlowBuilder: ...}`) for tools that have only the
template: a deployed stack's template is JSON, so `fbc cost --against deployed` can price it alone.

Two parts: the manifest (logical ID -> the plan node it serves and its role; the type is the resource's own)
and the few plan facts the pricers read that no resource property says (which services are public, what
reaches a worker, the schedules). A template without this record (an older fbc) is priced from resource types
where that is possible (cost.estimate).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, cast, get_args

from ..plan import Plan
from .manifest import Entry, Manifest, Node, NodeKind, Role

KEY = "FlowBuilder"
VERSION = 1


@dataclass(frozen=True)
class ServiceFacts:
    name: str
    kind: str  # web or worker
    role: str | None  # the runtime role (api, worker) or None: its own image
    public: bool = False
    queue: str | None = None
    concurrency: int = 1


@dataclass(frozen=True)
class QueueFacts:
    name: str
    fifo: bool


@dataclass(frozen=True)
class ScheduleFacts:
    expression: str
    timezone: str
    enabled: bool


@dataclass(frozen=True)
class Facts:
    """The plan as the pricers read it; names of the stack are for reports ("" when unknown)."""

    app: str = ""
    stack_name: str = ""
    profile: str = ""
    environment: str = ""
    region: str = ""
    worker_mode: str = "poll"
    runtime_queue: str | None = None
    external_database: bool = False
    services: tuple[ServiceFacts, ...] = ()
    queues: tuple[QueueFacts, ...] = ()
    schedules: tuple[ScheduleFacts, ...] = ()

    def queue(self, name: str) -> QueueFacts:
        """KeyError when the facts name no such queue (a hand-edited record)."""
        found = next((q for q in self.queues if q.name == name), None)
        if found is None:
            raise KeyError(name)
        return found

    @property
    def web_services(self) -> tuple[ServiceFacts, ...]:
        return tuple(s for s in self.services if s.kind == "web")

    @property
    def workers(self) -> tuple[ServiceFacts, ...]:
        return tuple(s for s in self.services if s.kind == "worker")


def facts(plan: Plan) -> Facts:
    return Facts(
        app=plan.app, stack_name=plan.stack_name, profile=plan.profile, environment=plan.environment,
        region=plan.region, worker_mode=plan.worker_mode, runtime_queue=plan.runtime_queue,
        external_database=plan.decisions.rds is None,
        services=tuple(ServiceFacts(s.name, s.kind, s.role, s.public, s.queue, s.concurrency) for s in plan.services),
        queues=tuple(QueueFacts(q.name, q.fifo) for q in plan.queues),
        schedules=tuple(ScheduleFacts(s.expression, s.timezone, s.enabled) for s in plan.schedules))


def metadata(plan: Plan, manifest: Manifest) -> dict[str, Any]:
    """The record, compact: the manifest as {logical ID: [node kind, role(, node name)]}. No nulls: cfn-lint
    refuses them in Metadata (E4002), so what is None is left out."""
    found = facts(plan)
    recorded: dict[str, Any] = _without_none({KEY: {
        "version": VERSION,
        "stack": {"app": found.app, "name": found.stack_name, "profile": found.profile,
                  "environment": found.environment, "region": found.region},
        "manifest": {e.logical_id: [e.node.kind, e.role, *([] if e.node.name is None else [e.node.name])]
                     for e in manifest},
        "plan": {
            "workerMode": found.worker_mode, "runtimeQueue": found.runtime_queue,
            "externalDatabase": found.external_database,
            "services": [{"name": s.name, "kind": s.kind, "role": s.role, "public": s.public, "queue": s.queue,
                          "concurrency": s.concurrency} for s in found.services],
            "queues": [{"name": q.name, "fifo": q.fifo} for q in found.queues],
            "schedules": [{"expression": s.expression, "timezone": s.timezone, "enabled": s.enabled}
                          for s in found.schedules],
        },
    }})
    return recorded


def _without_none(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _without_none(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_without_none(v) for v in value]
    return value


class Unrecorded(ValueError):
    """The template carries no record fbc can read (an older fbc, or not fbc's)."""


def read(template: dict[str, Any]) -> tuple[Manifest, Facts]:
    """The manifest and facts a template records; Unrecorded (with why) when it has none or a broken one."""
    record = (template.get("Metadata") or {}).get(KEY)
    if not isinstance(record, dict):
        raise Unrecorded("the template records no fbc manifest (built by an older fbc, or not by fbc)")
    if record.get("version") != VERSION:
        raise Unrecorded(f"the template's fbc record is version {record.get('version')!r}; this fbc reads {VERSION}")
    try:
        resources = template.get("Resources", {})
        entries = []
        for logical_id, (kind, role, *name) in record["manifest"].items():
            if kind not in get_args(NodeKind) or role not in get_args(Role) or logical_id not in resources:
                raise Unrecorded(f"the template's fbc record names {logical_id} as {kind}/{role}, which it lacks")
            node = Node(cast(NodeKind, kind), name[0] if name else None)
            entries.append(Entry(logical_id, str(resources[logical_id]["Type"]), node, cast(Role, role)))
        stack, plan = record["stack"], record["plan"]
        return Manifest(tuple(entries)), Facts(
            app=str(stack["app"]), stack_name=str(stack["name"]), profile=str(stack["profile"]),
            environment=str(stack["environment"]), region=str(stack["region"]), worker_mode=str(plan["workerMode"]),
            runtime_queue=plan.get("runtimeQueue"), external_database=bool(plan["externalDatabase"]),
            services=tuple(ServiceFacts(s["name"], s["kind"], s.get("role"), bool(s["public"]), s.get("queue"),
                                        int(s["concurrency"])) for s in plan["services"]),
            queues=tuple(QueueFacts(q["name"], bool(q["fifo"])) for q in plan["queues"]),
            schedules=tuple(ScheduleFacts(s["expression"], s["timezone"], bool(s["enabled"]))
                            for s in plan["schedules"]))
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        if isinstance(exc, Unrecorded):
            raise
        raise Unrecorded(f"the template's fbc record is malformed ({type(exc).__name__}: {exc})") from None
