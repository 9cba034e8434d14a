"""AWS's cron and rate grammar, one case per rule where the old parsers differed from AWS, and the timetable's
search over the whole year field (1970-2199)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from conftest import CORPUS, run_fbc
from flowbuilder.compiler.local.cron import Timetable, next_firing
from flowbuilder.compiler.schedule_expr import Cron, NthOf, Rate, ScheduleError, Span, parse, parse_cron, parse_rate

UTC_ZONE = ZoneInfo("UTC")


def at(year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, second, tzinfo=UTC)


def refused(expression: str) -> str:
    with pytest.raises(ScheduleError) as info:
        parse_cron(expression)
    return str(info.value)


def test_hash_only_as_the_single_day_of_week_expression() -> None:
    # AWS: "If you use a '#' character, you can define only one expression in the day-of-week field.
    # For example, "3#1,6#3" is not valid because it is interpreted as two expressions."
    assert "a single expression, not a list" in refused("0 9 ? * 3#1,6#3 *")
    assert "a single expression, not a list" in refused("0 9 ? * MON#1,FRI *")
    assert parse_cron("0 9 ? * 3#1 *").day_of_week == (NthOf(3, 1),)


@pytest.mark.parametrize("field", ["*/2", "MON/2", "2/3", "MON-FRI/2"])
def test_no_step_in_day_of_week(field: str) -> None:
    # AWS's day-of-week wildcards are , - * ? L # (day-of-month's are , - * ? / L W)
    assert "day-of-week takes no '/' step" in refused(f"0 9 ? * {field} *")
    parse_cron("0 9 1/3 * ? *")


@pytest.mark.parametrize("expression", [
    "0 ² * * ? *",  # superscript two: str.isdigit() said yes, int() said no
    "0 \u0663 * * ? *",  # Arabic-Indic three: int() reads it as 3
    "0 3 * * ? \uff12\uff10\uff13\uff10",  # fullwidth digits 2030
    "0\u00a03 * * ? *",  # no-break space between fields: str.split() splits on it
    "0 3 * * ?\u2003*",  # em space
    "0 3 * * ? *\u3000",  # ideographic space at the end: str.strip() strips it
    "0 3 * * ? *\n0 4 * * ? *",  # a newline inside
    "0 3 * \u017fun ? *",  # the long s, which .upper() turns into S (SUN)
])
def test_ascii_digits_and_separators_only(expression: str) -> None:
    message = refused(expression)
    assert message.startswith("character '") and "is not allowed" in message
    assert message.isprintable()  # control characters are escaped: the message stays one line


def test_rate_takes_ascii_digits_and_exact_units() -> None:
    for expression in ["rate(\u0665 minutes)", "5\u00a0minutes", "5 minutess", "2 hourss"]:
        with pytest.raises(ScheduleError):
            parse_rate(expression)
    assert parse_rate("rate(5 minutes)") == Rate(5, "minute")


def test_huge_numbers_are_refused_not_crashed_on() -> None:
    # int() refuses more than 4300 digits with a ValueError that is not a ScheduleError
    assert refused("1" * 5000 + " 3 * * ? *").startswith("minutes value 111111111111... is outside 0-59")
    assert refused("0/" + "9" * 5000 + " 3 * * ? *").startswith("step /999999999999... in minutes is larger")
    with pytest.raises(ScheduleError, match=r"rate value 999999999999\.\.\. is outside 0-2147483647"):
        parse_rate("9" * 5000 + " days")


def test_years_do_not_wrap_but_other_ranges_do() -> None:
    assert refused("0 0 1 1 ? 2035-2030") == "year range 2035-2030 runs backwards"
    # AWS's own example: every 30 minutes from 10 pm to 2 am
    assert parse_cron("0/30 20-2 ? * MON-FRI *").hours == (Span(20, 2),)


def test_unbalanced_and_empty_pieces() -> None:
    assert refused("cron(0 3 * * ? *") == "'cron(' has no closing ')'"
    assert refused("cron()").startswith("0 fields")
    assert refused("0 3 1,,2 * ? *") == "'' is not a valid day-of-month value"


@pytest.mark.parametrize(("expression", "after", "expected"), [
    # the 5th Monday of February: only in a leap year whose February starts on a Monday (28 years apart)
    ("cron(0 0 ? 2 MON#5 *)", at(2016, 3, 1), at(2044, 2, 29)),
    # a leap day across 2100, which is not a leap year
    ("cron(0 0 29 2 ? *)", at(2096, 3, 1), at(2104, 2, 29)),
    # a leap day that is also a Monday
    ("cron(0 0 29 2 ? *)", at(2027, 1, 1), at(2028, 2, 29)),
    # every tenth year
    ("cron(0 0 1 1 ? 2030/10)", at(2030, 1, 1, 0, 1), at(2040, 1, 1)),
    # yearly, on a day of the week
    ("cron(0 12 ? DEC 1L 2027-2199)", at(2027, 12, 27), at(2028, 12, 31, 12)),
    # the last year the field can name
    ("cron(59 23 31 12 ? 2199)", at(2026, 1, 1), at(2199, 12, 31, 23, 59)),
])
def test_the_timetable_searches_the_whole_year_field(expression: str, after: datetime, expected: datetime) -> None:
    assert next_firing(parse_cron(expression), after, UTC_ZONE) == expected


def test_never_again_is_none_after_2199_or_an_impossible_date() -> None:
    assert next_firing(parse_cron("0 0 1 1 ? 2199"), at(2199, 1, 1, 1), UTC_ZONE) is None
    assert next_firing(parse_cron("0 0 30 2 ? *"), at(2026, 1, 1), UTC_ZONE) is None
    assert next_firing(parse_cron("0 0 ? 2 MON#5 2045-2071"), at(2026, 1, 1), UTC_ZONE) is None


def test_nearest_weekday_of_a_day_the_month_lacks_does_not_fire() -> None:
    # AWS's documentation does not say; like a plain 31, and like Quartz (where this syntax comes from),
    # 31W fires only in months with a 31st. 31 May 2026 is a Sunday: the Friday before.
    cron = parse_cron("0 12 31W * ? *")
    assert next_firing(cron, at(2026, 4, 1), UTC_ZONE) == at(2026, 5, 29, 12)
    assert not cron.matches_day(datetime(2026, 4, 30).date())
    assert next_firing(parse_cron("0 12 30W 2 ? *"), at(2026, 1, 1), UTC_ZONE) is None
    # within the month it never crosses the boundary: 1W on Saturday 1 Aug 2026 is Monday the 3rd
    assert next_firing(parse_cron("0 12 1W * ? *"), at(2026, 7, 31), UTC_ZONE) == at(2026, 8, 3, 12)


def test_parse_picks_by_the_plans_prefix() -> None:
    assert isinstance(parse("rate(1 day)"), Rate) and isinstance(parse("cron(0 3 * * ? *)"), Cron)
    assert str(parse("cron(0/15 9-17 ? * MON-FRI *)")) == "cron(*/15 9-17 ? * 2-6 *)"


def test_a_huge_rate_never_fires_again_rather_than_overflowing() -> None:
    table = Timetable("rate(2147483647 days)", UTC_ZONE, at(2026, 1, 1))
    assert table.next_after(at(2025, 1, 1)) == at(2026, 1, 1)
    assert table.next_after(at(2026, 1, 1)) is None


def _validate(tmp_path: Path, field: str) -> tuple[int, str]:
    spec = (CORPUS / "cron-both-days.yaml").read_text("utf-8").replace('cron: "0 3 * * MON *"', field)
    (tmp_path / "flowbuilder.yaml").write_text(spec, "utf-8")
    result = run_fbc("validate", cwd=tmp_path)
    assert "Traceback" not in result.output
    return result.exit_code, result.stdout.strip()


@pytest.mark.parametrize(("field", "message"), [
    ('cron: "0 ² * * ? *"', "'0 ² * * ? *': character '²' is not allowed"),
    ('cron: "0 3 * * ? *\\n0 4 * * ? *"', r"'0 3 * * ? *\n0 4 * * ? *': character '\n' is not allowed"),
    ('cron: "' + "1" * 5000 + ' 3 * * ? *"', "minutes value 111111111111... is outside 0-59"),
    ('rate: "\u0665 minutes"', "'\u0665 minutes': not a rate expression"),
    ('cron: "0 3 * * ? *", timezone: "Europe/Berlin\\n"', r"'Europe/Berlin\n' is not an IANA time zone"),
])
def test_fbc_validate_locates_each_error_on_one_line(tmp_path: Path, field: str, message: str) -> None:
    code, out = _validate(tmp_path, field)
    assert code == 1 and len(out.splitlines()) == 1, out
    assert out.startswith("flowbuilder.yaml:12:")
    assert message in out
