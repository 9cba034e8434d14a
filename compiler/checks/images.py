"""What a Lambda will run: container images must come from Amazon ECR, in the function's region.

The scheduler Lambda runs the runtime image under every profile; a profile that serves web services from
Lambda (function-url) puts their images under the same rule, and Lambda's memory ceiling.
"""

from __future__ import annotations

from collections.abc import Iterator

from ..diagnostics import Diagnostic, Path
from ..scalars import ECR_IMAGE
from ..spec import WebService
from .context import CheckContext

LAMBDA_MAX_MEMORY = 10240


def _serves_from_lambda(ctx: CheckContext) -> bool:
    return ctx.profile is not None and ctx.profile.spec.web.serving == "function-url"


def _lambda_images(ctx: CheckContext) -> Iterator[tuple[Path, str, str]]:
    spec = ctx.app.spec
    yield ("spec", "runtime", "image"), spec.runtime.image, "the scheduler Lambda"
    if _serves_from_lambda(ctx):
        assert ctx.profile is not None
        for name, service in spec.services.items():
            if isinstance(service, WebService) and service.image is not None:
                yield (("spec", "services", name, "image"), service.image,
                       f"the {ctx.profile.name} profile's Lambda for web service '{name}'")


def lambda_images_in_ecr(ctx: CheckContext) -> Iterator[Diagnostic]:
    region = ctx.app.spec.region
    for path, image, user in _lambda_images(ctx):
        match = ECR_IMAGE.match(image)
        if match is None:
            yield Diagnostic(f"'{image}' is run by {user}, and Lambda runs only images in Amazon ECR "
                             f"(<account>.dkr.ecr.{region}.amazonaws.com/<repository>:<tag>)", path=path)
        elif match.group("region") != region:
            yield Diagnostic(f"image is in ECR region {match.group('region')}, but {user} runs in {region}; Lambda "
                             f"pulls only from its own region", path=path)


def lambda_memory(ctx: CheckContext) -> Iterator[Diagnostic]:
    if not _serves_from_lambda(ctx):
        return
    for name, service in ctx.app.spec.services.items():
        if isinstance(service, WebService) and service.memory > LAMBDA_MAX_MEMORY:
            yield Diagnostic(f"{service.memory} MiB is more than Lambda's {LAMBDA_MAX_MEMORY} MiB, and the "
                             f"{ctx.profile.name if ctx.profile else ''} profile serves web services from "
                             f"Lambda", path=("spec", "services", name, "memory"))
