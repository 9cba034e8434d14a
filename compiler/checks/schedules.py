"""Schedule expressions (parsed by compiler/schedule_expr.py, the grammar fbc up and fbc cost use too) and
IANA time zones."""

from __future__ import annotations

from collections.abc import Iterator
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from ..diagnostics import Diagnostic
from ..model_errors import did_you_mean
from ..schedule_expr import ScheduleError, parse_cron, parse_rate, quoted
from .context import CheckContext


def schedule_expressions(ctx: CheckContext) -> Iterator[Diagnostic]:
    for name, schedule in ctx.app.spec.schedules.items():
        try:
            if schedule.cron is not None:
                field, expression = "cron", schedule.cron
                parse_cron(expression)
            else:
                field, expression = "rate", schedule.rate or ""
                parse_rate(expression)
        except ScheduleError as exc:
            yield Diagnostic(f"{quoted(expression)}: {exc}", path=("spec", "schedules", name, field))


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

            yield Diagnostic(f"{quoted(schedule.timezone)} is not an IANA time zone"
                             f"{did_you_mean(schedule.timezone, available_timezones())}",
                             path=("spec", "schedules", name, "timezone"))
