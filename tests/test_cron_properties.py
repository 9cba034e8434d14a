"""Property tests of the one cron grammar: random valid expressions round-trip through text, and the timetable's
firings equal a brute-force evaluator written here from AWS's rules (day by day, then minute by minute in UTC
through each matching local day), across daylight saving changes and over many years. The generator builds each
expression together with its meaning, so the evaluator never reads the text with the parser under test."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from itertools import pairwise, takewhile
from zoneinfo import ZoneInfo

from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from flowbuilder.compiler.local.cron import next_firing
from flowbuilder.compiler.schedule_expr import ScheduleError, parse_cron, parse_rate

MONTHS = ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")
DAYS = ("SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT")
ZONES = ("UTC", "America/New_York", "Europe/Berlin", "Australia/Lord_Howe", "America/Santiago")


@dataclass(frozen=True)
class Part:
    text: str
    test: Callable[[int], bool]


@dataclass(frozen=True)
class DayPart:
    text: str
    test: Callable[[date], bool]


@dataclass(frozen=True)
class Expression:
    text: str
    minute: Callable[[int], bool]
    hour: Callable[[int], bool]
    day: Callable[[date], bool]  # day-of-month or day-of-week, month and year


def walk(start: int, stop: int, low: int, high: int) -> list[int]:
    """start, start + 1, ... stop, going round from high to low."""
    out = [start]
    while out[-1] != stop:
        out.append(low if out[-1] == high else out[-1] + 1)
    return out


@st.composite
def spans(draw: st.DrawFn, low: int, high: int, names: tuple[str, ...] = (), steps: bool = True,
          near: tuple[int, int] | None = None) -> Part:
    """*, a, a-b, */s, a/s or a-b/s; `near` narrows where a and b are drawn (years near the test window)."""
    pick_low, pick_high = near or (low, high)
    a = draw(st.integers(pick_low, pick_high))
    b = draw(st.integers(a if near else pick_low, pick_high))  # years do not wrap
    step = draw(st.integers(1, 4) | st.integers(1, high))
    kind = draw(st.sampled_from(["*", "a", "a-b", *(["*/s", "a/s", "a-b/s"] if steps else [])]))

    named = draw(st.lists(st.booleans(), min_size=2, max_size=2))  # a and b each as a name or a number

    def show(v: int) -> str:
        return names[v - low] if names and named[v != a] else str(v)

    every, run, tail = walk(low, high, low, high), walk(a, b, low, high), walk(a, high, low, high)
    text, values = {
        "*": ("*", every), "a": (show(a), [a]), "a-b": (f"{show(a)}-{show(b)}", run),
        "*/s": (f"*/{step}", every[::step]), "a/s": (f"{show(a)}/{step}", tail[::step]),
        "a-b/s": (f"{show(a)}-{show(b)}/{step}", run[::step]),
    }[kind]
    return Part(text, frozenset(values).__contains__)


def field(parts: st.SearchStrategy[Part]) -> st.SearchStrategy[Part]:
    return st.lists(parts, min_size=1, max_size=3).map(
        lambda ps: Part(",".join(p.text for p in ps), lambda v: any(p.test(v) for p in ps)))


def days_of(day: date) -> list[date]:
    first = day.replace(day=1)
    return [first + timedelta(days=i) for i in range(31) if (first + timedelta(days=i)).month == day.month]


def weekday(day: date) -> int:
    return DAYS.index(("MON", "TUE", "WED", "THU", "FRI", "SAT", "SUN")[day.weekday()]) + 1


def is_weekday(day: date) -> bool:
    return weekday(day) not in (1, 7)


def nearest_weekday(n: int) -> Callable[[date], bool]:
    """nW: of the month's weekdays, the one closest to day n; none in a month without day n."""
    def test(day: date) -> bool:
        month = days_of(day)
        return n <= len(month) and day == min((d for d in month if is_weekday(d)), key=lambda d: abs(d.day - n))
    return test


def day_parts(pairs: dict[str, Callable[[date], bool]], plain: st.SearchStrategy[Part],
              of: Callable[[date], int]) -> st.SearchStrategy[DayPart]:
    return st.one_of(plain.map(lambda p: DayPart(p.text, lambda d: p.test(of(d)))),
                     st.sampled_from(sorted(pairs)).map(lambda t: DayPart(t, pairs[t])))


def last_of(n: int) -> Callable[[date], bool]:
    """nL: weekday n with no weekday n after it in the month."""
    return lambda d: weekday(d) == n and (d + timedelta(days=7)).month != d.month


def _last_day(d: date) -> bool:
    return (d + timedelta(days=1)).month != d.month


DAY_OF_MONTH = day_parts(
    {"L": _last_day, "LW": lambda d: is_weekday(d) and d == max(x for x in days_of(d) if is_weekday(x)),
     **{f"{n}W": nearest_weekday(n) for n in (1, 2, 15, 28, 29, 30, 31)}},
    spans(1, 31), lambda d: d.day)
DAY_OF_WEEK = day_parts(
    {"L": lambda d: weekday(d) == 7,
     **{f"{n}L": last_of(n) for n in range(1, 8)}},
    spans(1, 7, DAYS, steps=False), weekday)


@st.composite
def nth(draw: st.DrawFn) -> DayPart:
    n, k = draw(st.integers(1, 7)), draw(st.integers(1, 5))
    name = DAYS[n - 1] if draw(st.booleans()) else str(n)
    return DayPart(f"{name}#{k}", lambda d: weekday(d) == n and sum(
        1 for x in days_of(d) if x <= d and weekday(x) == n) == k)


def single(low: int, high: int) -> st.SearchStrategy[Part]:
    return st.integers(low, high).map(lambda v: Part(str(v), v.__eq__))


EVERY = Part("*", lambda v: True)
EVERY_DAY = DayPart("*", lambda d: True)


@st.composite
def expressions(draw: st.DrawFn, mode: str = "any") -> Expression:
    """Any valid expression; "dst" mostly fires every day, early in the morning (when clocks change); "sparse"
    fires once on its days, which may be years apart."""
    often = mode == "dst" and draw(st.integers(0, 3)) > 0  # three times in four
    once = mode == "sparse"
    minute = draw(single(0, 59) if once else field(spans(0, 59)))
    hour = draw(single(0, 23) if once else field(spans(0, 23, near=(0, 4) if mode == "dst" else None) | spans(0, 23)))
    month = EVERY if often else draw(field(spans(1, 12, MONTHS)))
    years = (2024, 2199) if once else (2020, 2040)
    year = EVERY if mode == "dst" else draw(st.just(EVERY) | field(spans(1970, 2199, near=years)))
    if often:
        dom, dow = ([EVERY_DAY], None) if draw(st.booleans()) else (None, [EVERY_DAY])
    elif draw(st.booleans()):
        dom, dow = draw(st.lists(DAY_OF_MONTH, min_size=1, max_size=3)), None
    else:
        dom, dow = None, draw(nth().map(lambda p: [p]) | st.lists(DAY_OF_WEEK, min_size=1, max_size=3))
    days = dom or dow or []

    def day(d: date) -> bool:
        return month.test(d.month) and year.test(d.year) and any(p.test(d) for p in days)

    texts = [minute.text, hour.text, ",".join(p.text for p in dom) if dom else "?", month.text,
             ",".join(p.text for p in dow) if dow else "?", year.text]
    gap = draw(st.sampled_from([" ", "  ", "\t"]))
    body = gap.join(texts)
    return Expression(f"cron({body})" if draw(st.booleans()) else body, minute.test, hour.test, day)


def brute_force(expr: Expression, zone: ZoneInfo, after: datetime, until: datetime, limit: int) -> list[datetime]:
    """Every UTC minute whose local wall time matches, the first time that wall time occurs, in (after, until]."""
    out: list[datetime] = []
    day = after.astimezone(zone).date()
    while day <= until.astimezone(zone).date() and len(out) < limit:
        if expr.day(day):
            seen: set[datetime] = set()
            moment = datetime.combine(day, time(), tzinfo=zone).astimezone(UTC) - timedelta(hours=3)
            stop = datetime.combine(day + timedelta(days=1), time(), tzinfo=zone).astimezone(UTC) + timedelta(hours=3)
            while moment < stop:
                local = moment.astimezone(zone)
                wall = local.replace(tzinfo=None, fold=0)
                if local.date() == day and expr.hour(local.hour) and expr.minute(local.minute) and wall not in seen:
                    seen.add(wall)  # a wall time repeated by a fall-back change fires the first time only
                    if after < moment <= until:
                        out.append(moment)
                moment += timedelta(minutes=1)
        day += timedelta(days=1)
    return out[:limit]


def timetable(expr: Expression, zone: ZoneInfo, after: datetime, until: datetime, limit: int) -> list[datetime]:
    cron, moment = parse_cron(expr.text), after
    out: list[datetime] = []
    while len(out) < limit:
        found = next_firing(cron, moment, zone)
        if found is None or found > until:
            break
        out.append(found)
        moment = found
    return out


def transitions(zone: ZoneInfo) -> list[datetime]:
    """The UTC minutes, 2025-2029, at which the zone's offset changes."""
    noons = [datetime(2025, 1, 1, 12, tzinfo=UTC) + timedelta(days=i) for i in range(5 * 365)]
    changed = [a for a, b in pairwise(noons)
               if a.astimezone(zone).utcoffset() != b.astimezone(zone).utcoffset()]
    return [next(a + timedelta(minutes=i) for i in range(1, 1441)
                 if (a + timedelta(minutes=i)).astimezone(zone).utcoffset() != a.astimezone(zone).utcoffset())
            for a in changed]


TRANSITIONS = {name: transitions(ZoneInfo(name)) for name in ZONES}
FAST = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@FAST
@given(expressions())
def test_a_valid_expression_round_trips_through_its_text(expr: Expression) -> None:
    parsed = parse_cron(expr.text)
    assert parse_cron(str(parsed)) == parsed
    assert str(parse_cron(str(parsed))) == str(parsed)


@FAST
@given(st.data(), expressions("dst"), st.sampled_from([z for z in ZONES if z != "UTC"]))
def test_firings_across_daylight_saving_changes_equal_brute_force(
        data: st.DataObject, expr: Expression, zone_name: str) -> None:
    zone = ZoneInfo(zone_name)
    change = data.draw(st.sampled_from(TRANSITIONS[zone_name]))
    after = change - timedelta(minutes=data.draw(st.integers(0, 26 * 60)))
    until = change + timedelta(hours=30)  # every firing in the window: up to 3,000 minutes
    expected = brute_force(expr, zone, after, until, 10_000)
    event("fires on both sides of the change" if expected and expected[0] < change < expected[-1] else
          "fires on one side" if expected else "no firing in the window")
    assert timetable(expr, zone, after, until, 10_000) == expected


@settings(max_examples=40, deadline=None)  # the slowest: up to 12 years of days, then minutes
@given(expressions("sparse"), st.sampled_from(ZONES),
       st.datetimes(datetime(2024, 1, 1), datetime(2180, 1, 1), timezones=st.just(UTC)))
def test_firings_over_a_dozen_years_equal_brute_force(expr: Expression, zone_name: str, after: datetime) -> None:
    zone, until = ZoneInfo(zone_name), after + timedelta(days=12 * 366)
    expected = brute_force(expr, zone, after, until, 12)
    event("spans years" if len(expected) > 1 and expected[-1] - expected[0] > timedelta(days=366) else
          "within a year" if expected else "no firing in the window")
    assert timetable(expr, zone, after, until, 12) == expected


@settings(max_examples=150, deadline=None)
@given(expressions(), st.dates(date(2024, 1, 1), date(2040, 1, 1)))
def test_the_days_a_cron_fires_on_equal_brute_force(expr: Expression, start: date) -> None:
    """Day rules alone (L, LW, nW, nL, n#k, ranges), over 400 days: cheap enough for many examples."""
    window = [start + timedelta(days=i) for i in range(400)]
    fired = list(takewhile(lambda d: d <= window[-1], parse_cron(expr.text).dates_from(start)))
    assert fired == [d for d in window if expr.day(d)]


@FAST
@given(st.text(max_size=40) | st.text(alphabet="0123456789*/,-?#LW \tMONJANcrate()s\u00b2", max_size=30))
def test_any_text_is_an_expression_or_one_located_line(text: str) -> None:
    for parser in (parse_cron, parse_rate):
        try:
            parser(text)
        except ScheduleError as exc:
            assert str(exc).isprintable()  # one line: control characters arrive escaped
