"""AWS cron and rate expressions, and IANA time zones.

EventBridge Scheduler's cron has six fields (minutes hours day-of-month month day-of-week year); exactly
one of the two day fields is '?'. L, W and # follow the AWS rules. Rate takes a singular unit for 1.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from ..diagnostics import Diagnostic
from ..model_errors import did_you_mean
from .context import CheckContext

MONTHS = {m: i for i, m in enumerate("JAN FEB MAR APR MAY JUN JUL AUG SEP OCT NOV DEC".split(), 1)}
DAYS = {d: i for i, d in enumerate("SUN MON TUE WED THU FRI SAT".split(), 1)}


@dataclass(frozen=True)
class Field:
    name: str
    low: int
    high: int
    names: dict[str, int]


FIELDS = (
    Field("minutes", 0, 59, {}),
    Field("hours", 0, 23, {}),
    Field("day-of-month", 1, 31, {}),
    Field("month", 1, 12, MONTHS),
    Field("day-of-week", 1, 7, DAYS),
    Field("year", 1970, 2199, {}),
)


class CronError(ValueError):
    pass


def _number(text: str, field: Field) -> int:
    value = field.names.get(text.upper()) if text.isalpha() else int(text) if text.isdigit() else None
    if value is None:
        raise CronError(f"'{text}' is not a valid {field.name} value")
    if not field.low <= value <= field.high:
        raise CronError(f"{field.name} value {value} is outside {field.low}-{field.high}")
    return value


def _element(text: str, field: Field) -> None:
    """One comma-separated element: *, a, a-b, with an optional /step; plus the day fields' L, W, #."""
    if field.name == "day-of-month" and text in ("L", "LW"):
        return
    if field.name == "day-of-month" and text.endswith("W"):
        _number(text[:-1], field)
        return
    if field.name == "day-of-week":
        if text == "L":
            return
        if "#" in text:
            day, _, nth = text.partition("#")
            _number(day, field)
            if not (nth.isdigit() and 1 <= int(nth) <= 5):
                raise CronError(f"'#{nth}' must name the 1st to 5th weekday of the month")
            return
        if text.endswith("L") and len(text) > 1:
            _number(text[:-1], field)
            return
    base, slash, step = text.partition("/")
    if slash:
        if not step.isdigit() or int(step) < 1:
            raise CronError(f"step '/{step}' in {field.name} must be a positive number")
        if int(step) > field.high:
            raise CronError(f"step /{step} in {field.name} is larger than {field.high}")
    if base == "*":
        return
    low, dash, high = base.partition("-")
    _number(low, field)
    if dash:
        _number(high, field)


def check_cron(expression: str) -> None:
    body = expression.strip()
    if body.startswith("cron(") and body.endswith(")"):
        body = body[5:-1]
    parts = body.split()
    if len(parts) != 6:
        raise CronError(f"{len(parts)} fields, but AWS cron takes 6: minutes hours day-of-month month "
                        f"day-of-week year")
    dom, dow = parts[2], parts[4]
    if (dom == "?") == (dow == "?"):
        raise CronError("exactly one of day-of-month and day-of-week must be '?'")
    for text, field in zip(parts, FIELDS, strict=True):
        if text == "?":
            if field.name not in ("day-of-month", "day-of-week"):
                raise CronError(f"'?' is allowed only in day-of-month and day-of-week, not in {field.name}")
            continue
        for element in text.split(","):
            _element(element, field)


_RATE = re.compile(r"^(?:rate\()?\s*(\d+)\s+([a-z]+)\s*\)?$")
_UNITS = ("minute", "hour", "day")


def check_rate(expression: str) -> None:
    match = _RATE.match(expression.strip())
    if not match or (expression.strip().startswith("rate(") != expression.strip().endswith(")")):
        raise CronError("not a rate expression such as '5 minutes' or 'rate(1 hour)'")
    value, unit = int(match.group(1)), match.group(2)
    if value < 1:
        raise CronError("rate must be at least 1")
    if unit.rstrip("s") not in _UNITS:
        raise CronError(f"unit '{unit}' is not one of minute(s), hour(s), day(s)")
    if value == 1 and unit.endswith("s"):
        raise CronError(f"use the singular for 1: '1 {unit[:-1]}'")
    if value > 1 and not unit.endswith("s"):
        raise CronError(f"use the plural for {value}: '{value} {unit}s'")


def schedule_expressions(ctx: CheckContext) -> Iterator[Diagnostic]:
    for name, schedule in ctx.app.spec.schedules.items():
        field, expression, check = (("cron", schedule.cron, check_cron) if schedule.cron is not None
                                    else ("rate", schedule.rate or "", check_rate))
        try:
            check(expression)
        except CronError as exc:
            yield Diagnostic(f"'{expression}': {exc}", path=("spec", "schedules", name, field))


def _zone_exists(name: str) -> bool:
    if not name or name.startswith("/") or ".." in name:
        return False
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return False
    return True


def schedule_timezones(ctx: CheckContext) -> Iterator[Diagnostic]:
    for name, schedule in ctx.app.spec.schedules.items():
        if not _zone_exists(schedule.timezone):
            from zoneinfo import available_timezones  # slow scan; only when there is an error to explain

            yield Diagnostic(f"'{schedule.timezone}' is not an IANA time zone"
                             f"{did_you_mean(schedule.timezone, available_timezones())}",
                             path=("spec", "schedules", name, "timezone"))
