"""When schedules fire locally: AWS cron rules and EventBridge Scheduler's daylight-saving behaviour, on
hand-checked dates."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from flowbuilder.compiler.local.cron import Timetable, next_firing
from flowbuilder.compiler.schedule_expr import ScheduleError, parse_cron, parse_rate

BERLIN = ZoneInfo("Europe/Berlin")
UTC_ZONE = ZoneInfo("UTC")


def at(year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, second, tzinfo=UTC)


@pytest.mark.parametrize(("expression", "zone", "after", "expected"), [
    # 03:00 Berlin in winter is 02:00 UTC
    ("cron(0 3 * * ? *)", BERLIN, at(2026, 11, 28, 10), at(2026, 11, 29, 2)),
    # strictly after: a firing at exactly `after` is not the next one
    ("cron(0 2 * * ? *)", UTC_ZONE, at(2026, 11, 28, 2), at(2026, 11, 29, 2)),
    # spring forward (28 March 2027, 02:00 -> 03:00 in Berlin): 02:30 does not exist that day and is skipped
    ("cron(30 2 * * ? *)", BERLIN, at(2027, 3, 27, 12), at(2027, 3, 29, 0, 30)),
    # fall back (31 October 2027, 03:00 -> 02:00): 02:30 happens twice and fires once, the first time
    ("cron(30 2 * * ? *)", BERLIN, at(2027, 10, 30, 12), at(2027, 10, 31, 0, 30)),
    ("cron(30 2 * * ? *)", BERLIN, at(2027, 10, 31, 0, 30), at(2027, 11, 1, 1, 30)),
    # every 15 minutes on weekdays in office hours, across a weekend (28 Nov 2026 is a Saturday)
    ("cron(0/15 9-17 ? * MON-FRI *)", UTC_ZONE, at(2026, 11, 27, 17, 50), at(2026, 11, 30, 9, 0)),
    # last Friday of the month; the 2nd Monday; the last weekday; the weekday nearest the 1st (a Sunday)
    ("cron(0 12 ? * 6L *)", UTC_ZONE, at(2026, 11, 1), at(2026, 11, 27, 12)),
    ("cron(0 12 ? * MON#2 *)", UTC_ZONE, at(2026, 11, 1), at(2026, 11, 9, 12)),
    ("cron(0 12 LW * ? *)", UTC_ZONE, at(2026, 11, 1), at(2026, 11, 30, 12)),
    ("cron(0 12 1W * ? *)", UTC_ZONE, at(2026, 11, 1), at(2026, 11, 2, 12)),
    # 1W on a Saturday 1st moves forward to Monday the 3rd, never back into the previous month (Aug 2026)
    ("cron(0 12 1W * ? *)", UTC_ZONE, at(2026, 7, 31), at(2026, 8, 3, 12)),
    # L: the last day of February in a leap year
    ("cron(0 0 L 2 ? *)", UTC_ZONE, at(2027, 6, 1), at(2028, 2, 29)),
    # a wrapping day range and named months
    ("cron(0 8 ? DEC-JAN SAT-SUN *)", UTC_ZONE, at(2026, 11, 28), at(2026, 12, 5, 8)),
    # a year restriction
    ("cron(0 0 1 1 ? 2030)", UTC_ZONE, at(2026, 11, 28), at(2030, 1, 1)),
])
def test_next_cron_firing(expression: str, zone: ZoneInfo, after: datetime, expected: datetime) -> None:
    assert next_firing(parse_cron(expression), after, zone) == expected


def test_a_cron_that_never_fires_again_says_so() -> None:
    assert next_firing(parse_cron("cron(0 0 29 2 ? 2030)"), at(2026, 1, 1), UTC_ZONE) is None  # 2030: no leap day
    assert next_firing(parse_cron("cron(0 0 1 1 ? 2020)"), at(2026, 1, 1), UTC_ZONE) is None


def test_every_minute_fires_on_each_minute() -> None:
    cron = parse_cron("* * * * ? *")
    moment = at(2026, 11, 28, 23, 58, 30)
    seen = []
    for _ in range(4):
        nxt = next_firing(cron, moment, BERLIN)
        assert nxt is not None
        seen.append(nxt)
        moment = nxt
    assert seen == [at(2026, 11, 28, 23, 59), at(2026, 11, 29, 0, 0), at(2026, 11, 29, 0, 1), at(2026, 11, 29, 0, 2)]


def test_rate_fires_at_start_then_every_interval() -> None:
    start = at(2026, 11, 28, 10, 0, 7)
    table = Timetable("rate(5 minutes)", UTC_ZONE, start)
    assert table.next_after(start - timedelta(seconds=1)) == start
    assert table.next_after(start) == start + timedelta(minutes=5)
    assert table.next_after(start + timedelta(minutes=12)) == start + timedelta(minutes=15)
    assert parse_rate("rate(1 day)").seconds == 86400 and parse_rate("2 hours").seconds == 7200


def test_invalid_expressions_raise_the_validation_error() -> None:
    with pytest.raises(ScheduleError, match="exactly one of day-of-month and day-of-week"):
        Timetable("cron(0 0 * * * *)", UTC_ZONE, at(2026, 1, 1)).next_after(at(2026, 1, 1))


def test_the_local_scheduler_fires_on_its_clock_with_the_scheduled_time(tmp_path: Path) -> None:
    """fbc up's Scheduler reads an injected clock: a cron's firing, the sweeper's and the events they send,
    checked across a minute boundary and five minutes without waiting for either."""
    import threading

    from flowbuilder.compiler.build import compile_spec
    from flowbuilder.compiler.local.schedules import Scheduler

    spec = tmp_path / "flowbuilder.yaml"
    spec.write_text((Path(__file__).parent / "specs" / "minimal.yaml").read_text("utf-8") + (
        "  schedules:\n    nightly: {cron: \"0 3 * * ? *\", timezone: Europe/Berlin, workflow: cleanup}\n"), "utf-8")
    plan = compile_spec(spec, "standard", "dev").plan
    now = [at(2026, 11, 29, 1, 54, 59)]  # 02:54:59 in Berlin
    events: list[dict[str, object]] = []

    class Done:
        def running(self) -> bool:
            return False

    def invoke(event: dict[str, object]) -> Done:
        events.append(event)
        return Done()

    scheduler = Scheduler(plan, invoke, logs=None, clock=lambda: now[0])  # type: ignore[arg-type]
    for seconds in (0, 1, 60, 4 * 60, 5 * 60, 6 * 60 + 1):  # 02:54:59 ... 03:00:59 Berlin
        now[0] = at(2026, 11, 29, 1, 54, 59) + timedelta(seconds=seconds)
        scheduler.fire_due(now[0])
    assert [e["type"] for e in events] == ["sweep", "schedule"]  # the sweeper 5 min after start, then 03:00
    assert events[1]["scheduledTime"] == "2026-11-29T02:00:00Z" and events[1]["workflow"] == "cleanup"
    stop = threading.Event()
    now[0] += timedelta(days=1)  # run() reads the same clock: the next day's 03:00 and sweeps are due
    thread = threading.Thread(target=scheduler.run, args=(stop, 0.01))
    thread.start()
    try:
        deadline = datetime.now(UTC) + timedelta(seconds=10)
        while len(events) < 4 and datetime.now(UTC) < deadline:
            threading.Event().wait(0.01)
    finally:
        stop.set()
        thread.join(10)
    assert sorted(e["type"] for e in events[2:]) == ["schedule", "sweep"]
    assert next(e for e in events[2:] if e["type"] == "schedule")["scheduledTime"] == "2026-11-30T02:00:00Z"
