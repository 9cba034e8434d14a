"""Schedules and the sweeper, fired locally as EventBridge Scheduler fires them on AWS: each firing is one
invocation of the scheduler handler (`python -m flowbuilder.runtime.scheduler`, the event on stdin), with
the same event the compiled schedule sends. A flexible window is not applied: locally a schedule fires on
the minute."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from .. import contract
from ..plan import Plan
from .cron import Timetable
from .processes import Child, Logs, stop_all

Invoke = Callable[[dict[str, Any]], Child]  # event -> a started scheduler invocation
Clock = Callable[[], datetime]  # the current time, aware; tests pass their own instead of waiting for a minute


def wall_clock() -> datetime:
    return datetime.now(UTC)
SWEEPER = "sweeper"


def timetables(plan: Plan, start: datetime) -> dict[str, Timetable]:
    """Every enabled schedule's timetable, and the sweeper's (first run one interval after start)."""
    tables = {s.name: Timetable(s.expression, ZoneInfo(s.timezone), start) for s in plan.schedules if s.enabled}
    tables[SWEEPER] = Timetable(contract.SWEEP_RATE, ZoneInfo("UTC"),
                                start + timedelta(minutes=contract.SWEEP_MINUTES))
    return tables


def event_for(plan: Plan, name: str, moment: datetime) -> dict[str, Any]:
    if name == SWEEPER:
        return {"type": contract.SWEEP_EVENT}
    schedule = next(s for s in plan.schedules if s.name == name)
    return schedule.event(moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"))


class Scheduler:
    def __init__(self, plan: Plan, invoke: Invoke, logs: Logs, clock: Clock = wall_clock) -> None:
        self.plan, self.invoke, self.logs, self.clock = plan, invoke, logs, clock
        start = clock()
        self.tables = timetables(plan, start)
        # just before start, so a rate schedule's first firing (at start) counts
        self.due = {name: table.next_after(start - timedelta(microseconds=1)) for name, table in self.tables.items()}
        self.invocations: list[Child] = []

    def fire_due(self, moment: datetime) -> list[str]:
        fired = []
        for name, due in sorted(self.due.items()):
            if due is None or due > moment:
                continue
            self.invocations.append(self.invoke(event_for(self.plan, name, due)))
            self.due[name] = self.tables[name].next_after(moment)  # a missed firing is not caught up
            fired.append(name)
        self.invocations = [c for c in self.invocations if c.running()]
        return fired

    def run(self, stop: threading.Event, tick: float = 0.5) -> None:
        try:
            while not stop.wait(tick):
                self.fire_due(self.clock())
        finally:
            stop_all(self.invocations, 10)
