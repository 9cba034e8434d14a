"""How a standard-profile worker scales on its queue: the rules the emitted alarms encode and `fbc up`
follows locally. Pure data, so both read the same numbers.

A queue-not-empty alarm sets the desired count by backlog (ExactCapacity steps, the first max(1, min), the
last max); a queue-empty alarm (nothing visible and nothing in flight for EMPTY_PERIODS minutes) sets it
to the minimum, usually zero.
"""

from __future__ import annotations

import math

from .plan import ServicePlan

BACKLOG_PER_SLOT = 10  # queued messages one concurrent execution slot is expected to absorb
EMPTY_PERIODS = 5  # consecutive empty minutes before scaling to the minimum


def backlog_steps(worker: ServicePlan) -> list[tuple[int, int | None, int]]:
    """(lower, upper, exact capacity) steps over the number of visible messages; the first sets
    max(1, min), the last max."""
    floor = max(1, worker.scaling_min)
    capacities = sorted({floor, *(max(floor, math.ceil(worker.scaling_max * f)) for f in (0.25, 0.5, 1.0))})
    per_task = BACKLOG_PER_SLOT * worker.concurrency
    steps: list[tuple[int, int | None, int]] = []
    lower = 0
    for i, capacity in enumerate(capacities):
        upper = capacity * per_task if i < len(capacities) - 1 else None
        steps.append((lower, upper, capacity))
        lower = upper or lower
    return steps


def capacity_for_backlog(worker: ServicePlan, visible: int) -> int:
    """The count the not-empty alarm's step policy sets for `visible` messages (visible > 0)."""
    for lower, upper, capacity in backlog_steps(worker):
        if visible > lower and (upper is None or visible <= upper):
            return capacity
    return backlog_steps(worker)[-1][2]
