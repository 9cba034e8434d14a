"""Sizes and timings AWS constrains in ways a schema cannot say."""

from __future__ import annotations

from collections.abc import Iterator

from ..diagnostics import Diagnostic
from ..scalars import human_duration
from ..spec import WorkerService
from .context import CheckContext

# Fargate task sizes: cpu -> (lowest MiB, highest MiB, step MiB).
FARGATE_MEMORY: dict[int, tuple[int, int, int]] = {
    256: (512, 2048, 512),  # 512, 1024, 2048 (1536 is not offered)
    512: (1024, 4096, 1024),
    1024: (2048, 8192, 1024),
    2048: (4096, 16384, 1024),
    4096: (8192, 30720, 1024),
    8192: (16384, 61440, 4096),
    16384: (32768, 122880, 8192),
}


def fargate_memory_options(cpu: int) -> list[int]:
    if cpu == 256:
        return [512, 1024, 2048]
    low, high, step = FARGATE_MEMORY[cpu]
    return list(range(low, high + 1, step))


def _describe(cpu: int) -> str:
    options = fargate_memory_options(cpu)
    if len(options) <= 4:
        return ", ".join(map(str, options))
    return f"{options[0]} to {options[-1]} in steps of {options[1] - options[0]}"


def fargate_sizes(ctx: CheckContext) -> Iterator[Diagnostic]:
    for name, service in ctx.app.spec.services.items():
        if service.memory not in fargate_memory_options(service.cpu):
            yield Diagnostic(f"{service.memory} MiB is not a Fargate size for cpu {service.cpu}; "
                             f"choose {_describe(service.cpu)}", path=("spec", "services", name, "memory"))


def visibility_covers_timeout(ctx: CheckContext) -> Iterator[Diagnostic]:
    queues = ctx.app.spec.queues
    for name, service in ctx.app.spec.services.items():
        if not isinstance(service, WorkerService) or service.queue not in queues:
            continue
        visibility = queues[service.queue].visibility_timeout
        if visibility < service.timeout:
            yield Diagnostic(
                f"{human_duration(visibility)} is shorter than the timeout of worker '{name}' "
                f"({human_duration(service.timeout)}): a message would be delivered again while it is still "
                f"being processed", path=("spec", "queues", service.queue, "visibilityTimeout"))


def fifo_options(ctx: CheckContext) -> Iterator[Diagnostic]:
    for name, queue in ctx.app.spec.queues.items():
        if queue.content_based_deduplication and not queue.fifo:
            yield Diagnostic("applies to FIFO queues only; set fifo: true",
                             path=("spec", "queues", name, "contentBasedDeduplication"))
