"""How web services are served: what a profile's serving mode makes impossible."""

from __future__ import annotations

from collections.abc import Iterator

from ..diagnostics import Diagnostic
from ..spec import WebService, WorkerService
from .context import CheckContext


def web_services_can_start(ctx: CheckContext) -> Iterator[Diagnostic]:
    """A web service on ECS at 0 tasks never starts: target tracking on CPU and memory has no metric without
    a running task, and requests to the load balancer do not start one, so it answers 503 for ever. A
    function URL (ultra) starts on the first request, so 0 is fine there."""
    if ctx.profile is None or ctx.profile.spec.web.serving != "load-balancer":
        return
    for name, service in ctx.app.spec.services.items():
        if isinstance(service, WebService) and service.scaling.min == 0:
            yield Diagnostic(
                f"web service '{name}' would never start: on ECS ({ctx.profile.name} profile) nothing scales a "
                f"web service out of 0 tasks; use min: 1 (function URLs, as in ultra, scale to zero)",
                path=("spec", "services", name, "scaling", "min"))


def pipe_workers_with_their_own_image(ctx: CheckContext) -> Iterator[Diagnostic]:
    """With Pipe dispatch, Pipes deletes a message as soon as RunTask succeeds. The runtime's worker keeps the
    execution in the database (lease and sweeper) so nothing is lost; an image of your own gets the body once
    (FLOWBUILDER_EXECUTION_ID, at most 8 KB of overrides) and a reclaimed or crashed task loses it. FIFO order
    is not kept either: the next task starts when the previous one is accepted, not finished."""
    if ctx.profile is None or ctx.profile.spec.workers.dispatch != "pipe":
        return
    for name, service in ctx.app.spec.services.items():
        if isinstance(service, WorkerService) and service.runtime is None:
            fifo = ctx.app.spec.queues.get(service.queue)
            order = "; its FIFO order is not kept" if fifo is not None and fifo.fifo else ""
            yield Diagnostic(
                f"worker '{name}' runs its own image under Pipe dispatch ({ctx.profile.name}): each message is "
                f"deleted when its task starts, so a task that is reclaimed or fails loses it{order}; use "
                f"runtime: worker, or a profile with autoscaled-service dispatch, where the task deletes it",
                path=("spec", "services", name, "image"), severity="warning")


def function_secrets_of_own_images(ctx: CheckContext) -> Iterator[Diagnostic]:
    """Lambda has no secret injection: the runtime resolves FLOWBUILDER_SECRET_<NAME> references itself, an image
    of your own must do the same, or it runs without the value it gets on ECS."""
    if ctx.profile is None or ctx.profile.spec.web.serving != "function-url":
        return
    for name, service in ctx.app.spec.services.items():
        if isinstance(service, WebService) and service.runtime is None and service.secrets:
            first = sorted(service.secrets)[0]
            yield Diagnostic(
                f"web service '{name}' runs its own image on Lambda ({ctx.profile.name}), which injects no secrets: "
                f"it gets FLOWBUILDER_SECRET_{first} (the reference) instead of {first}, and must read the value "
                f"from SSM or Secrets Manager itself (its role may)",
                path=("spec", "services", name, "secrets"), severity="warning")
