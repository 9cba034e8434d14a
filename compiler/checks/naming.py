"""Names once they become CloudFormation logical IDs and SQS queue names."""

from __future__ import annotations

from collections.abc import Iterator

from ..diagnostics import Diagnostic
from ..naming import GLOBAL_IDS, logical_ids, queue_name
from ..spec import NAMED_KINDS
from .context import CheckContext

MAX_QUEUE_NAME = 80


def queue_name_lengths(ctx: CheckContext) -> Iterator[Diagnostic]:
    app = ctx.app.metadata.name
    for name, queue in ctx.app.spec.queues.items():
        for environment in ctx.environments:
            longest = queue_name(app, environment, name, dead_letter=True, fifo=queue.fifo)
            if len(longest) > MAX_QUEUE_NAME:
                yield Diagnostic(f"queue name '{longest}' is {len(longest)} characters; SQS allows "
                                 f"{MAX_QUEUE_NAME}: shorten the queue or application name",
                                 path=("spec", "queues", name), at_key=True)
                break


def logical_id_collisions(ctx: CheckContext) -> Iterator[Diagnostic]:
    spec = ctx.app.spec
    owners: dict[str, tuple[str, str]] = {}
    for kind in NAMED_KINDS:
        for name in getattr(spec, kind):
            for logical_id in logical_ids(kind, name):
                if logical_id in GLOBAL_IDS:
                    yield Diagnostic(f"becomes the CloudFormation logical ID '{logical_id}', which the stack "
                                     f"uses for its own resources; choose another name",
                                     path=("spec", kind, name), at_key=True)
                    break
                other = owners.get(logical_id)
                if other and other != (kind, name):
                    yield Diagnostic(f"becomes the CloudFormation logical ID '{logical_id}', as "
                                     f"spec.{other[0]}.{other[1]} does; rename one of them",
                                     path=("spec", kind, name), at_key=True)
                    break
                owners[logical_id] = (kind, name)
