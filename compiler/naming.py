"""Logical IDs: stable, derived from names, and a compatibility contract (SAM treats its scheme so).

`workflow-requests` -> `WorkflowRequests`; each kind of spec entry appends fixed suffixes. Changing either
replaces live resources, so tests pin the format.
"""

from __future__ import annotations

# The suffixes each kind of entry produces; a collision between any two entries is an error at validate
# time, long before CloudFormation would reject the template.
KIND_SUFFIXES: dict[str, tuple[str, ...]] = {
    "services": ("Service", "TaskDefinition", "TaskRole", "ExecutionRole", "LogGroup", "SecurityGroup",
                 "TargetGroup", "ScalableTarget", "Function", "FunctionUrl"),
    "queues": ("Queue", "DeadLetterQueue", "DeadLetterAlarm", "AgeAlarm", "Pipe", "PipeRole"),
    "schedules": ("Schedule",),
}


def pascal(name: str) -> str:
    """DNS-label name -> alphanumeric PascalCase: 'api-v2' -> 'ApiV2'."""
    return "".join(part[:1].upper() + part[1:] for part in name.split("-"))


def logical_ids(kind: str, name: str) -> list[str]:
    base = pascal(name)
    return [base + suffix for suffix in KIND_SUFFIXES[kind]]
