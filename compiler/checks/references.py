"""Names that refer to other entries, and overlays that must fit what they override."""

from __future__ import annotations

from collections.abc import Iterator, Mapping

from ..diagnostics import Diagnostic, Path
from ..model_errors import did_you_mean
from ..spec import NAMED_KINDS, WebService, WorkerService
from .context import CheckContext

RESERVED_ENV_PREFIXES = ("AWS_", "ECS_", "FLOWBUILDER_")  # set by AWS or by the runtime contract


def worker_queues(ctx: CheckContext) -> Iterator[Diagnostic]:
    queues = ctx.app.spec.queues
    for name, service in ctx.app.spec.services.items():
        if isinstance(service, WorkerService) and service.queue not in queues:
            yield Diagnostic(f"queue '{service.queue}' is not defined under spec.queues"
                             f"{did_you_mean(service.queue, queues)}", path=("spec", "services", name, "queue"))


def unused_queues(ctx: CheckContext) -> Iterator[Diagnostic]:
    consumed = {s.queue for s in ctx.app.spec.services.values() if isinstance(s, WorkerService)}
    for name in ctx.app.spec.queues:
        if name not in consumed:
            yield Diagnostic("no worker consumes this queue; messages will wait until they expire",
                             path=("spec", "queues", name), severity="warning", at_key=True)


def overlay_targets_exist(ctx: CheckContext) -> Iterator[Diagnostic]:
    spec = ctx.app.spec
    known: dict[str, Mapping[str, object]] = {kind: getattr(spec, kind) for kind in NAMED_KINDS}
    for env_name, env in spec.environments.items():
        for kind in NAMED_KINDS:
            for name in getattr(env, kind):
                if name not in known[kind]:
                    yield Diagnostic(f"overrides {kind[:-1]} '{name}', which spec.{kind} does not define"
                                     f"{did_you_mean(name, known[kind])}",
                                     path=("spec", "environments", env_name, kind, name), at_key=True)


def env_secret_overlap(ctx: CheckContext) -> Iterator[Diagnostic]:
    owners: list[tuple[Path, dict[str, str], dict[str, str]]] = [
        (("spec", "runtime"), ctx.app.spec.runtime.env, ctx.app.spec.runtime.secrets)]
    owners += [(("spec", "services", n), s.env, s.secrets) for n, s in ctx.app.spec.services.items()]
    for path, env, secrets in owners:
        for var in sorted(set(env) & set(secrets)):
            yield Diagnostic(f"'{var}' is set in both env and secrets", path=(*path, "secrets", var), at_key=True)
        for section, names in (("env", env), ("secrets", secrets)):
            for var in names:
                if var.startswith(RESERVED_ENV_PREFIXES):
                    yield Diagnostic(f"'{var}' uses a reserved prefix ({', '.join(RESERVED_ENV_PREFIXES)})",
                                     path=(*path, section, var), at_key=True)


def runtime_roles(ctx: CheckContext) -> Iterator[Diagnostic]:
    """The API and the scheduler send executions to the queue the runtime workers consume: there must be
    exactly one such queue."""
    spec = ctx.app.spec
    worker_queues = spec.runtime_queues()
    if len(worker_queues) > 1:
        yield Diagnostic(f"runtime workers consume {len(worker_queues)} queues ({', '.join(worker_queues)}); the API "
                         f"and the scheduler send executions to one: give every runtime worker the same queue",
                         path=("spec", "services"), at_key=True)
    if worker_queues:
        return
    for name, service in spec.services.items():
        if isinstance(service, WebService) and service.runtime == "api":
            yield Diagnostic("the api role sends executions to a queue, but no service has runtime: worker",
                             path=("spec", "services", name, "runtime"))
    if spec.schedules:
        yield Diagnostic("schedules start executions through the queue of a runtime worker, and there is none",
                         path=("spec", "schedules"), at_key=True)


def unique_paths(ctx: CheckContext) -> Iterator[Diagnostic]:
    seen: dict[str, str] = {}
    for name, service in ctx.app.spec.services.items():
        if isinstance(service, WebService) and service.public:
            if service.path in seen:
                yield Diagnostic(f"path '{service.path}' is already routed to service '{seen[service.path]}'",
                                 path=("spec", "services", name, "path"))
            seen.setdefault(service.path, name)
