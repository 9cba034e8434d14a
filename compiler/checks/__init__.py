"""Semantic checks the schema cannot express, one small function per concern, listed explicitly.

A check reads the validated spec (and the profile, when one is chosen) and yields Diagnostics with paths;
it never formats positions.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator

from ..diagnostics import Diagnostic
from .context import CheckContext
from .images import lambda_images_in_ecr, lambda_memory
from .naming import logical_id_collisions, queue_name_lengths
from .references import (
    env_secret_overlap,
    overlay_targets_exist,
    runtime_roles,
    unique_paths,
    unused_queues,
    worker_queues,
)
from .resources import fargate_sizes, fifo_options, visibility_covers_timeout
from .schedules import schedule_expressions, schedule_timezones
from .serving import function_secrets_of_own_images, pipe_workers_with_their_own_image, web_services_can_start

Check = Callable[[CheckContext], Iterable[Diagnostic]]

CHECKS: tuple[Check, ...] = (
    worker_queues,
    unused_queues,
    overlay_targets_exist,
    env_secret_overlap,
    runtime_roles,
    unique_paths,
    fargate_sizes,
    visibility_covers_timeout,
    fifo_options,
    queue_name_lengths,
    logical_id_collisions,
    schedule_expressions,
    schedule_timezones,
    lambda_images_in_ecr,
    lambda_memory,
    web_services_can_start,
    pipe_workers_with_their_own_image,
    function_secrets_of_own_images,
)


def run_checks(ctx: CheckContext) -> Iterator[Diagnostic]:
    for check in CHECKS:
        yield from check(ctx)


__all__ = ["CHECKS", "CheckContext", "run_checks"]
