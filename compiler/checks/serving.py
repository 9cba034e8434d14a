"""How web services are served: what a profile's serving mode makes impossible."""

from __future__ import annotations

from collections.abc import Iterator

from ..diagnostics import Diagnostic
from ..spec import WebService
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
