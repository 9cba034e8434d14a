"""EventBridge Scheduler's schedule expressions, parsed once into typed values: cron(...) and rate(...).

One grammar for `fbc validate`, `fbc up`'s timetable and `fbc cost`. AWS's rules: cron has six fields
(minutes hours day-of-month month day-of-week year) and exactly one of the two day fields is '?'. A field is a
comma list of *, a, a-b (a range may wrap past the field's end, as 20-2 in hours or FRI-MON), each with an
optional /step, except in day-of-week, which takes , - * ? L # only. Day-of-month adds L, LW and nW;
day-of-week adds L (Saturday), nL (the month's last weekday n) and n#k (its k-th weekday n), where '#' must be
the field's only expression. Names are JAN-DEC and SUN-SAT (1 = SUN). Digits and separators are ASCII only.
rate(value unit) takes minute(s), hour(s) or day(s), singular exactly when the value is 1.

Fields are separated by spaces or tabs. Where AWS's documentation is silent we take the reading of Quartz,
whose cron syntax AWS's matches (?, L, W, #): nW in a month that has no day n does not fire that month (as a
plain n: 31W never fires in April), and a year range may not run backwards (years do not wrap).
"""

from __future__ import annotations

import calendar
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import date
from functools import cached_property
from typing import Literal, TypeVar


class ScheduleError(ValueError):
    """An expression AWS would refuse; the message says why, on one line."""


@dataclass(frozen=True)
class Field:
    name: str
    low: int
    high: int
    names: tuple[str, ...] = ()  # names[i] stands for low + i

    @property
    def size(self) -> int:
        return self.high - self.low + 1


MINUTES = Field("minutes", 0, 59)
HOURS = Field("hours", 0, 23)
DAY_OF_MONTH = Field("day-of-month", 1, 31)
MONTH = Field("month", 1, 12, tuple("JAN FEB MAR APR MAY JUN JUL AUG SEP OCT NOV DEC".split()))
DAY_OF_WEEK = Field("day-of-week", 1, 7, tuple("SUN MON TUE WED THU FRI SAT".split()))
YEAR = Field("year", 1970, 2199)
FIELDS = (MINUTES, HOURS, DAY_OF_MONTH, MONTH, DAY_OF_WEEK, YEAR)


@dataclass(frozen=True)
class Span:
    """*, a, a-b, a/step or a-b/step: every step-th value from start to stop, wrapping past the field's end."""

    start: int
    stop: int
    step: int = 1


@dataclass(frozen=True)
class LastDay:
    """L: the month's last day; LW: its last weekday."""

    weekday: bool = False


@dataclass(frozen=True)
class NearestWeekday:
    """nW: the weekday (MON-FRI) nearest day n, never crossing into another month."""

    day: int


@dataclass(frozen=True)
class LastOf:
    """nL in day-of-week: the month's last weekday n."""

    weekday: int


@dataclass(frozen=True)
class NthOf:
    """n#k: the month's k-th weekday n."""

    weekday: int
    nth: int


DayOfMonth = Span | LastDay | NearestWeekday
DayOfWeek = Span | LastOf | NthOf
E = TypeVar("E")

_DIGITS = re.compile(r"[0-9]+")  # not \d, which matches any Unicode digit ('²', '٣'), nor int(), which reads them
_LETTERS = re.compile(r"[A-Za-z]+")
_BLANKS = " \t\r\n"  # around a whole expression only (a YAML block scalar ends in a newline)
_SEPARATOR = re.compile(r"[ \t]+")
_FOREIGN = re.compile(r"[^\x20-\x7e\t]")  # anything but printable ASCII and tab


def quoted(text: str) -> str:
    """'text', unprintable characters escaped so that a message stays on one line, and a long text cut short."""
    shown = "".join(c if c.isprintable() else c.encode("unicode_escape").decode("ascii") for c in text[:61])
    return f"'{shown[:57]}...'" if len(shown) > 60 else f"'{shown}'"


def _shown(digits: str) -> str:
    """An ASCII digit string as a number, without leading zeros and cut short if it is very long."""
    digits = digits.lstrip("0") or "0"
    return digits if len(digits) <= 12 else digits[:12] + "..."


def _number(text: str, what: str, low: int, high: int) -> int:
    """An ASCII decimal in low..high; one with more digits than `high` is refused before int() reads it."""
    if not _DIGITS.fullmatch(text):
        raise ScheduleError(f"{quoted(text)} is not a valid {what} value")
    digits = text.lstrip("0") or "0"
    if len(digits) > len(str(high)) or not low <= int(digits) <= high:
        raise ScheduleError(f"{what} value {_shown(digits)} is outside {low}-{high}")
    return int(digits)


def _value(text: str, field: Field) -> int:
    if _LETTERS.fullmatch(text) and text.upper() in field.names:
        return field.low + field.names.index(text.upper())
    if _LETTERS.fullmatch(text):
        raise ScheduleError(f"{quoted(text)} is not a valid {field.name} value")
    return _number(text, field.name, field.low, field.high)


def _span(text: str, field: Field) -> Span:
    base, slash, step_text = text.partition("/")
    step = 1
    if slash:
        if field is DAY_OF_WEEK:
            raise ScheduleError(f"{quoted(text)}: day-of-week takes no '/' step (AWS allows , - * ? L # there)")
        if not _DIGITS.fullmatch(step_text) or not step_text.strip("0"):
            raise ScheduleError(f"step {quoted('/' + step_text)} in {field.name} must be a positive number")
        digits = step_text.lstrip("0")
        if len(digits) > len(str(field.high)) or int(digits) > field.high:
            raise ScheduleError(f"step /{_shown(digits)} in {field.name} is larger than {field.high}")
        step = int(digits)
    if base == "*":
        return Span(field.low, field.high, step)
    low_text, dash, high_text = base.partition("-")
    start = _value(low_text, field)
    stop = _value(high_text, field) if dash else field.high if slash else start
    if field is YEAR and stop < start:
        raise ScheduleError(f"year range {start}-{stop} runs backwards")
    return Span(start, stop, step)


def _day_of_month(text: str) -> DayOfMonth:
    if text in ("L", "LW"):
        return LastDay(weekday=text == "LW")
    if text.endswith("W"):
        return NearestWeekday(_value(text[:-1], DAY_OF_MONTH))
    return _span(text, DAY_OF_MONTH)


def _day_of_week(text: str) -> DayOfWeek:
    if text == "L":
        return Span(7, 7)  # alone, L is the week's last day: Saturday
    if "#" in text:
        day, _, nth = text.partition("#")
        weekday = _value(day, DAY_OF_WEEK)
        if nth not in ("1", "2", "3", "4", "5"):
            raise ScheduleError(f"{quoted('#' + nth)} must name the 1st to 5th weekday of the month")
        return NthOf(weekday, int(nth))
    if text.endswith("L"):
        return LastOf(_value(text[:-1], DAY_OF_WEEK))
    return _span(text, DAY_OF_WEEK)


def _elements(text: str, field: Field, element: Callable[[str], E]) -> tuple[E, ...]:
    parts = text.split(",")
    if field is DAY_OF_WEEK and len(parts) > 1 and "#" in text:
        raise ScheduleError(f"{quoted(text)}: with '#', day-of-week takes a single expression, not a list")
    return tuple(element(part) for part in parts)


def _day_field(text: str, field: Field, element: Callable[[str], E]) -> tuple[E, ...] | None:
    return None if text == "?" else _elements(text, field, element)


def _plain(text: str, field: Field) -> tuple[Span, ...]:
    if text == "?":
        raise ScheduleError(f"'?' is allowed only in day-of-month and day-of-week, not in {field.name}")
    return _elements(text, field, lambda part: _span(part, field))


def _expand(spans: Iterable[Span], field: Field) -> frozenset[int]:
    values: set[int] = set()
    for span in spans:
        count = (span.stop - span.start) % field.size + 1  # start..stop, wrapping past the field's end
        values.update(field.low + (span.start - field.low + i) % field.size for i in range(0, count, span.step))
    return frozenset(values)


def _span_text(span: Span, field: Field) -> str:
    step = f"/{span.step}" if span.step > 1 else ""
    if (span.start, span.stop) == (field.low, field.high):
        return f"*{step}"
    if span.start == span.stop and not step:
        return str(span.start)
    if span.stop == field.high and step:
        return f"{span.start}{step}"
    return f"{span.start}-{span.stop}{step}"


def _element_text(element: Span | LastDay | NearestWeekday | LastOf | NthOf, field: Field) -> str:
    if isinstance(element, Span):
        return _span_text(element, field)
    if isinstance(element, LastDay):
        return "LW" if element.weekday else "L"
    if isinstance(element, NearestWeekday):
        return f"{element.day}W"
    if isinstance(element, LastOf):
        return f"{element.weekday}L"
    return f"{element.weekday}#{element.nth}"


def weekday(day: date) -> int:
    """AWS numbering: 1 = Sunday ... 7 = Saturday."""
    return day.isoweekday() % 7 + 1


def _nearest_weekday(year: int, month: int, day: int, last: int) -> int:
    """nW: a Saturday moves to Friday (Monday when it is the 1st), a Sunday to Monday (Friday when it is last)."""
    iso = date(year, month, day).isoweekday()
    if iso == 6:
        return day - 1 if day > 1 else day + 2
    if iso == 7:
        return day + 1 if day < last else day - 2
    return day


@dataclass(frozen=True)
class Cron:
    """A parsed cron expression; day_of_month or day_of_week is None where the expression has '?'."""

    minutes: tuple[Span, ...]
    hours: tuple[Span, ...]
    day_of_month: tuple[DayOfMonth, ...] | None
    months: tuple[Span, ...]
    day_of_week: tuple[DayOfWeek, ...] | None
    years: tuple[Span, ...]

    def __str__(self) -> str:
        fields = (self.minutes, self.hours, self.day_of_month, self.months, self.day_of_week, self.years)
        return "cron(" + " ".join("?" if elements is None else ",".join(_element_text(e, f) for e in elements)
                                  for elements, f in zip(fields, FIELDS, strict=True)) + ")"

    @cached_property
    def times(self) -> tuple[tuple[int, int], ...]:
        """(hour, minute) of each firing in a matching day, in order."""
        return tuple((h, m) for h in sorted(_expand(self.hours, HOURS)) for m in sorted(_expand(self.minutes, MINUTES)))

    @cached_property
    def _months(self) -> frozenset[int]:
        return _expand(self.months, MONTH)

    @cached_property
    def _years(self) -> tuple[int, ...]:
        return tuple(sorted(_expand(self.years, YEAR)))

    @cached_property
    def _plain_days(self) -> frozenset[int]:
        """The day numbers (day-of-month) or weekdays (day-of-week) that the plain spans name."""
        elements = self.day_of_month if self.day_of_month is not None else self.day_of_week or ()
        field = DAY_OF_MONTH if self.day_of_month is not None else DAY_OF_WEEK
        return _expand((e for e in elements if isinstance(e, Span)), field)

    def days(self, year: int, month: int) -> list[int]:
        """The days of one month on which the expression fires, in order."""
        if month not in self._months or year not in self._years:
            return []
        last = calendar.monthrange(year, month)[1]
        if self.day_of_month is not None:
            found = {d for d in self._plain_days if d <= last}
            for e in self.day_of_month:
                if isinstance(e, LastDay):
                    found.add(_nearest_weekday(year, month, last, last) if e.weekday else last)
                elif isinstance(e, NearestWeekday) and e.day <= last:  # no day n this month: no firing
                    found.add(_nearest_weekday(year, month, e.day, last))
            return sorted(found)
        first = weekday(date(year, month, 1))
        return [d for d in range(1, last + 1) if self._weekday_fires((first + d - 2) % 7 + 1, d, last)]

    def _weekday_fires(self, day_of_week: int, day: int, last: int) -> bool:
        for e in self.day_of_week or ():
            if isinstance(e, LastOf) and e.weekday == day_of_week and day + 7 > last:
                return True
            if isinstance(e, NthOf) and e.weekday == day_of_week and (day - 1) // 7 + 1 == e.nth:
                return True
        return day_of_week in self._plain_days

    def matches_day(self, day: date) -> bool:
        return day.day in self.days(day.year, day.month)

    def dates_from(self, start: date) -> Iterator[date]:
        """Every matching date from `start` on, in order, up to the year field's end (2199)."""
        for year in self._years:
            if year < start.year:
                continue
            for month in sorted(self._months):
                if (year, month) < (start.year, start.month):
                    continue
                for day in self.days(year, month):
                    if date(year, month, day) >= start:
                        yield date(year, month, day)


def parse_cron(expression: str) -> Cron:
    """cron(...) or its six fields alone (the spec's form); ScheduleError says what AWS would refuse."""
    body = expression.strip(_BLANKS)
    foreign = _FOREIGN.search(body)
    if foreign:
        raise ScheduleError(f"character {quoted(foreign.group())} is not allowed: AWS cron takes ASCII digits, "
                            f"names and , - * / ? L W #")
    if body.startswith("cron("):
        if not body.endswith(")"):
            raise ScheduleError("'cron(' has no closing ')'")
        body = body[5:-1].strip(" \t")
    parts = _SEPARATOR.split(body) if body else []
    if len(parts) != 6:
        raise ScheduleError(f"{len(parts)} fields, but AWS cron takes 6: minutes hours day-of-month month "
                            f"day-of-week year")
    minutes, hours, dom, month, dow, year = parts
    if (dom == "?") == (dow == "?"):
        raise ScheduleError("exactly one of day-of-month and day-of-week must be '?'")
    return Cron(_plain(minutes, MINUTES), _plain(hours, HOURS), _day_field(dom, DAY_OF_MONTH, _day_of_month),
                _plain(month, MONTH), _day_field(dow, DAY_OF_WEEK, _day_of_week), _plain(year, YEAR))


Unit = Literal["minute", "hour", "day"]
_UNIT_SECONDS: dict[Unit, int] = {"minute": 60, "hour": 3600, "day": 86400}
_UNITS: dict[str, Unit] = {name: unit for unit in _UNIT_SECONDS for name in (unit, unit + "s")}
_RATE = re.compile(r"(rate\()?[ \t]*([0-9]+)[ \t]+([a-z]+)[ \t]*(\))?")
RATE_MAX = 2**31 - 1  # no documented limit; a value that does not fit a 32-bit int is refused, not trusted


@dataclass(frozen=True)
class Rate:
    value: int
    unit: Unit

    def __str__(self) -> str:
        return f"rate({self.value} {self.unit}{'' if self.value == 1 else 's'})"

    @property
    def seconds(self) -> int:
        return self.value * _UNIT_SECONDS[self.unit]


def parse_rate(expression: str) -> Rate:
    """rate(value unit) or 'value unit' alone (the spec's form)."""
    match = _RATE.fullmatch(expression.strip(_BLANKS))
    if not match or (match.group(1) is None) != (match.group(4) is None):
        raise ScheduleError("not a rate expression such as '5 minutes' or 'rate(1 hour)'")
    digits, unit = match.group(2), match.group(3)
    value = _number(digits, "rate", 0, RATE_MAX)
    if value < 1:
        raise ScheduleError("rate must be at least 1")
    if unit not in _UNITS:
        raise ScheduleError(f"unit {quoted(unit)} is not one of minute(s), hour(s), day(s)")
    singular = _UNITS[unit]
    if value == 1 and unit != singular:
        raise ScheduleError(f"use the singular for 1: '1 {singular}'")
    if value > 1 and unit == singular:
        raise ScheduleError(f"use the plural for {value}: '{value} {unit}s'")
    return Rate(value, singular)


def parse(expression: str) -> Cron | Rate:
    """A plan's expression, always written cron(...) or rate(...)."""
    return parse_rate(expression) if expression.strip(_BLANKS).startswith("rate(") else parse_cron(expression)
