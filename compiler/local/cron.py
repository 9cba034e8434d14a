"""When a schedule fires next: a parsed cron or rate expression (compiler/schedule_expr.py), in a time zone.

Daylight saving time as EventBridge Scheduler handles it: a local time that does not exist (spring forward) is
skipped; one that happens twice (fall back) fires once, the first time. A rate schedule with no start date
fires at once and then every interval. The search for a cron's next firing runs to the end of its year field
(2199), so a schedule decades apart (a 5th Monday in February) is found, and one that never fires again is None.
"""

from __future__ import annotations

from bisect import bisect_left
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cached_property
from zoneinfo import ZoneInfo

from ..schedule_expr import Cron, parse

_BEYOND_CALENDAR = 10_000 * 366 * 86400  # seconds; a longer rate (up to 2^31 days) fires as rarely: once


def next_firing(cron: Cron, after: datetime, zone: ZoneInfo) -> datetime | None:
    """The first firing strictly after `after` (aware), in UTC; None if the expression never fires again."""
    local = after.astimezone(zone)
    for day in cron.dates_from(local.date()):
        # on after's own day, a wall time before after's is earlier in UTC too (fold=0 times only grow)
        skip = bisect_left(cron.times, (local.hour, local.minute)) if day == local.date() else 0
        for hour, minute in cron.times[skip:]:
            wall = datetime(day.year, day.month, day.day, hour, minute, tzinfo=zone)  # fold=0: the first time
            moment = wall.astimezone(UTC)
            if moment <= after:
                continue
            if moment.astimezone(zone).replace(tzinfo=None) != wall.replace(tzinfo=None):
                continue  # this wall time does not exist today (spring forward): skipped
            return moment
    return None


@dataclass(frozen=True)
class Timetable:
    """One schedule's firing times: a cron in its zone, or a rate anchored at `start`."""

    expression: str
    zone: ZoneInfo
    start: datetime

    @cached_property
    def _every(self) -> timedelta | Cron:
        """Parsed once: a rate's interval, or the cron."""
        parsed = parse(self.expression)
        return parsed if isinstance(parsed, Cron) else timedelta(seconds=min(parsed.seconds, _BEYOND_CALENDAR))

    def next_after(self, after: datetime) -> datetime | None:
        every = self._every
        if isinstance(every, Cron):
            return next_firing(every, after, self.zone)
        if after < self.start:
            return self.start
        try:
            return self.start + every * ((after - self.start) // every + 1)
        except OverflowError:  # past datetime's year 9999: never again
            return None
