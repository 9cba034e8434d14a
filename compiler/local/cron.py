"""When a schedule fires next: EventBridge Scheduler's cron and rate expressions, evaluated in a time zone.

The rules are AWS's (the validation in checks/schedules.py accepts the same syntax): six fields, minutes
hours day-of-month month day-of-week(1=SUN) year; L, LW and nW in day-of-month; L, nL and n#k in
day-of-week. Daylight saving time as EventBridge Scheduler handles it: a local time that does not exist
(spring forward) is skipped; one that happens twice (fall back) fires once. A rate schedule with no start
date fires at once and then every interval.
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from functools import cached_property
from zoneinfo import ZoneInfo

from ..checks.schedules import DAYS, FIELDS, MONTHS, Field, check_cron, check_rate

_SEARCH_YEARS = 8  # far enough for any expression that fires at all (a 29 February on a Monday: < 7 years)


def _number(text: str, field: Field) -> int:
    names = MONTHS if field.name == "month" else DAYS if field.name == "day-of-week" else {}
    return names[text.upper()] if text.isalpha() else int(text)


def _values(text: str, field: Field) -> frozenset[int]:
    """The plain elements of one field: *, a, a-b (wrapping, as FRI-MON), with an optional /step."""
    values: set[int] = set()
    for element in text.split(","):
        base, _, step_text = element.partition("/")
        step = int(step_text) if step_text else 1
        if base == "*":
            low, high = field.low, field.high
        else:
            low_text, dash, high_text = base.partition("-")
            low = _number(low_text, field)
            high = _number(high_text, field) if dash else (field.high if step_text else low)
        span = list(range(low, high + 1)) if low <= high else \
            list(range(low, field.high + 1)) + list(range(field.low, high + 1))
        values.update(span[::step])
    return frozenset(values)


def _weekday(day: date) -> int:
    """AWS numbering: 1 = Sunday ... 7 = Saturday."""
    return (day.isoweekday() % 7) + 1


def _nearest_weekday(year: int, month: int, day: int) -> int:
    """nW: the weekday nearest to day n, never crossing into another month."""
    last = calendar.monthrange(year, month)[1]
    day = min(day, last)
    weekday = date(year, month, day).isoweekday()
    if weekday == 6:  # Saturday -> Friday, or Monday when the 1st is a Saturday
        return day - 1 if day > 1 else day + 2
    if weekday == 7:  # Sunday -> Monday, or Friday when Sunday is the month's last day
        return day + 1 if day < last else day - 2
    return day


@dataclass(frozen=True)
class Cron:
    minutes: frozenset[int]
    hours: frozenset[int]
    months: frozenset[int]
    years: frozenset[int]
    day_of_month: str  # kept as text: L, LW and nW depend on the month
    day_of_week: str

    @classmethod
    def parse(cls, expression: str) -> Cron:
        check_cron(expression)  # raises CronError with the same message fbc validate gives
        body = expression.strip()
        if body.startswith("cron("):
            body = body[5:-1]
        minutes, hours, dom, month, dow, year = body.split()
        return cls(_values(minutes, FIELDS[0]), _values(hours, FIELDS[1]), _values(month, FIELDS[3]),
                   _values(year, FIELDS[5]), dom, dow)

    def matches_day(self, day: date) -> bool:
        if day.month not in self.months or day.year not in self.years:
            return False
        if self.day_of_month != "?":
            return any(self._dom_element(e, day) for e in self.day_of_month.split(","))
        return any(self._dow_element(e, day) for e in self.day_of_week.split(","))

    def _dom_element(self, element: str, day: date) -> bool:
        last = calendar.monthrange(day.year, day.month)[1]
        if element == "L":
            return day.day == last
        if element == "LW":
            return day.day == _nearest_weekday(day.year, day.month, last)
        if element.endswith("W"):
            return day.day == _nearest_weekday(day.year, day.month, int(element[:-1]))
        return day.day in _values(element, FIELDS[2])

    def _dow_element(self, element: str, day: date) -> bool:
        weekday = _weekday(day)
        if element == "L":
            return weekday == 7
        if "#" in element:
            name, _, nth = element.partition("#")
            return weekday == _number(name, FIELDS[4]) and (day.day - 1) // 7 + 1 == int(nth)
        if element.endswith("L"):
            last = calendar.monthrange(day.year, day.month)[1]
            return weekday == _number(element[:-1], FIELDS[4]) and day.day + 7 > last
        return weekday in _values(element, FIELDS[4])

    def next_after(self, after: datetime, zone: ZoneInfo) -> datetime | None:
        """The first firing strictly after `after` (aware), in UTC; None if the expression never fires again."""
        local = after.astimezone(zone)
        day = local.date()
        for _ in range(_SEARCH_YEARS * 366):
            if self.matches_day(day):
                for hour in sorted(self.hours):
                    for minute in sorted(self.minutes):
                        wall = datetime(day.year, day.month, day.day, hour, minute, tzinfo=zone)  # fold=0: once
                        moment = wall.astimezone(UTC)
                        if moment <= after:
                            continue
                        if moment.astimezone(zone).replace(tzinfo=None) != wall.replace(tzinfo=None):
                            continue  # this wall time does not exist today (spring forward): skipped
                        return moment
            day += timedelta(days=1)
        return None


def rate_seconds(expression: str) -> int:
    check_rate(expression)
    body = expression.strip().removeprefix("rate(").removesuffix(")")
    value, unit = body.split()
    return int(value) * {"minute": 60, "hour": 3600, "day": 86400}[unit.rstrip("s")]


@dataclass(frozen=True)
class Timetable:
    """One schedule's firing times: a cron in its zone, or a rate anchored at `start`."""

    expression: str
    zone: ZoneInfo
    start: datetime

    @cached_property
    def _every(self) -> timedelta | Cron:
        """Parsed once: a rate's interval, or the cron."""
        if self.expression.startswith("rate("):
            return timedelta(seconds=rate_seconds(self.expression))
        return Cron.parse(self.expression)

    def next_after(self, after: datetime) -> datetime | None:
        every = self._every
        if isinstance(every, Cron):
            return every.next_after(after, self.zone)
        if after < self.start:
            return self.start
        return self.start + every * ((after - self.start) // every + 1)
