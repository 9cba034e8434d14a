"""`fbc schedules`: each schedule's next firings, from the spec alone, by the very timetable `fbc up` fires on
(local/cron.py's Timetable over schedule_expr.py's grammar): no second reading of cron, rate or daylight saving.

A rate schedule fires when it is deployed and then every interval (it has no start date), so its firings are
counted from the report's start. A firing at the start itself counts, as it does for `fbc up`.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from ..plan import SchedulePlan
from .cron import Timetable


@dataclass(frozen=True)
class Firing:
    local: datetime  # in the schedule's time zone
    utc: datetime


@dataclass(frozen=True)
class Upcoming:
    name: str
    expression: str  # cron(...) or rate(...), as the template deploys it
    timezone: str
    workflow: str
    enabled: bool
    next: tuple[Firing, ...]  # empty when disabled
    ends: bool | None  # True: no firing after these (the year field runs out); None when disabled

    @property
    def is_rate(self) -> bool:
        return self.expression.startswith("rate(")


def parse_moment(text: str) -> datetime:
    """An ISO 8601 time (2027-03-28T01:30:00+01:00, 2027-03-28T00:30Z, 2027-03-28); without an offset, UTC."""
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise ValueError(f"{text!r} is not an ISO 8601 time such as 2027-03-28T01:30:00+01:00 or "
                         f"2027-03-28T00:30Z") from None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment


def firings(table: Timetable, start: datetime, count: int) -> tuple[tuple[Firing, ...], bool]:
    """The first `count` firings at or after `start`, and whether the timetable ends after them."""
    found: list[Firing] = []
    moment: datetime | None = start - timedelta(microseconds=1)
    while moment is not None and len(found) <= count:  # one more than asked, to know whether it ends
        moment = table.next_after(moment)
        if moment is not None:
            found.append(Firing(moment.astimezone(table.zone), moment.astimezone(UTC)))
    return tuple(found[:count]), len(found) <= count


def upcoming(schedules: Iterable[SchedulePlan], start: datetime, count: int) -> list[Upcoming]:
    """Every schedule, by name, with its next `count` firings from `start` (aware)."""
    report = []
    for s in schedules:
        times: tuple[Firing, ...] = ()
        ends: bool | None = None
        if s.enabled:
            times, ends = firings(Timetable(s.expression, ZoneInfo(s.timezone), start), start, count)
        report.append(Upcoming(s.name, s.expression, s.timezone, s.workflow, s.enabled, times, ends))
    return report


def _iso(moment: datetime) -> str:
    text = moment.isoformat(timespec="seconds")
    return text[:-6] + "Z" if moment.tzinfo is UTC else text


def json_text(report: list[Upcoming], start: datetime, environment: str) -> str:
    return json.dumps({
        "from": _iso(start.astimezone(UTC)), "environment": environment,
        "schedules": [{"name": u.name, "expression": u.expression, "timezone": u.timezone, "enabled": u.enabled,
                       "workflow": u.workflow,
                       "next": [{"local": _iso(f.local), "utc": _iso(f.utc)} for f in u.next],
                       "ends": u.ends} for u in report]}, indent=2)


def _clock(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M" + (":%S" if moment.second else ""))


def text(report: list[Upcoming], start: datetime, environment: str) -> str:
    shown = _clock(start.astimezone(UTC))
    if not report:
        return f"no schedules in the spec ({environment})"
    lines = [f"schedules ({environment}), from {shown} UTC:"]
    for u in report:
        head = f"{u.name}: {u.expression}" + ("" if u.is_rate else f" in {u.timezone}")
        lines.append(f"{head}, starts workflow {u.workflow}" + ("" if u.enabled else ": disabled, never fires"))
        if u.enabled and u.is_rate:
            lines.append(f"  (a rate fires when deployed, then every interval: counted from {shown} UTC)")
        width = max((len(_local(f.local)) for f in u.next), default=0)
        lines += [f"  {_local(f.local):<{width}}  =  {_clock(f.utc)} UTC" for f in u.next]
        if u.ends:
            lines.append("  never fires again" if not u.next else "  no firing after these: never fires again")
    return "\n".join(lines)


def _local(moment: datetime) -> str:
    """Sun 2027-03-28 03:30 CEST (+02:00): the weekday, for checking L, W and #."""
    offset = moment.strftime("%z")
    return f"{moment:%a} {_clock(moment)} {moment.tzname()} ({offset[:3]}:{offset[3:]})"
