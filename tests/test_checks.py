"""Each semantic check with good and bad fixtures (cfn-lint style), plus the rules every module shares."""

from __future__ import annotations

import pytest

from flowbuilder.compiler.checks import CHECKS
from flowbuilder.compiler.checks.resources import fargate_memory_options
from flowbuilder.compiler.merge import deep_merge
from flowbuilder.compiler.naming import logical_ids, pascal
from flowbuilder.compiler.scalars import human_duration
from flowbuilder.compiler.schedule_expr import ScheduleError, parse_cron, parse_rate

GOOD_CRON = ["0 3 * * ? *", "cron(0 3 * * ? *)", "0/15 * * * ? *", "0 9 ? * MON-FRI *", "0 9 ? * 2#1 *",
             "0 18 L * ? *", "0 8 15W * ? *", "0 8 LW * ? *", "0 9 ? * 6L *", "30 0 1 JAN,JUL ? 2030-2035",
             "0 0 ? * SUN,SAT *", "5,35 14 * * ? *", "* * ? * * *"]
BAD_CRON = {
    "0 3 * * *": "5 fields, but AWS cron takes 6",
    "0 3 * * * *": "exactly one of day-of-month and day-of-week must be '?'",
    "0 3 ? * ? *": "exactly one of day-of-month and day-of-week must be '?'",
    "60 3 * * ? *": "minutes value 60 is outside 0-59",
    "0 3 32 * ? *": "day-of-month value 32 is outside 1-31",
    "0 3 * 13 ? *": "month value 13 is outside 1-12",
    "0 3 ? * 8 *": "day-of-week value 8 is outside 1-7",
    "0 3 * * ? 1969": "year value 1969 is outside 1970-2199",
    "0 3 * FOO ? *": "'FOO' is not a valid month value",
    "0/0 3 * * ? *": "step '/0' in minutes must be a positive number",
    "0 ? * * ? *": "'?' is allowed only in day-of-month and day-of-week, not in hours",
    "0 9 ? * MON#0 *": "'#0' must name the 1st to 5th weekday of the month",
}


@pytest.mark.parametrize("expression", GOOD_CRON)
def test_cron_accepts(expression: str) -> None:
    parse_cron(expression)


@pytest.mark.parametrize(("expression", "message"), BAD_CRON.items())
def test_cron_rejects(expression: str, message: str) -> None:
    with pytest.raises(ScheduleError) as info:
        parse_cron(expression)
    assert str(info.value).startswith(message)


@pytest.mark.parametrize("expression", ["1 minute", "5 minutes", "rate(1 hour)", "rate(12 hours)", "1 day"])
def test_rate_accepts(expression: str) -> None:
    parse_rate(expression)


@pytest.mark.parametrize(("expression", "message"), [
    ("1 minutes", "use the singular for 1: '1 minute'"),
    ("5 minute", "use the plural for 5: '5 minutes'"),
    ("0 minutes", "rate must be at least 1"),
    ("2 weeks", "unit 'weeks' is not one of minute(s), hour(s), day(s)"),
    ("rate(5 minutes", "not a rate expression"),
    ("every 5 minutes", "not a rate expression"),
])
def test_rate_rejects(expression: str, message: str) -> None:
    with pytest.raises(ScheduleError) as info:
        parse_rate(expression)
    assert str(info.value).startswith(message)


def test_fargate_memory_table() -> None:
    assert fargate_memory_options(256) == [512, 1024, 2048]
    assert fargate_memory_options(512) == [1024, 2048, 3072, 4096]
    assert fargate_memory_options(4096)[-1] == 30720
    assert fargate_memory_options(16384)[:2] == [32768, 40960]


def test_logical_id_format_is_pinned() -> None:
    # A changed logical ID replaces a live resource: this format is a compatibility contract.
    assert pascal("workflow-requests") == "WorkflowRequests"
    assert pascal("api-v2") == "ApiV2"
    assert logical_ids("queues", "workflow-requests")[:2] == ["WorkflowRequestsQueue",
                                                              "WorkflowRequestsDeadLetterQueue"]
    assert logical_ids("services", "api")[0] == "ApiService"
    assert logical_ids("schedules", "nightly-report") == ["NightlyReportSchedule"]


def test_merge_maps_deeply_and_replaces_lists() -> None:
    base = {"a": {"x": 1, "y": [1, 2]}, "b": 1}
    overlay = {"a": {"y": [3], "z": {"k": True}}, "c": None}
    assert deep_merge(base, overlay) == {"a": {"x": 1, "y": [3], "z": {"k": True}}, "b": 1, "c": None}
    assert base == {"a": {"x": 1, "y": [1, 2]}, "b": 1}  # inputs are left alone


def test_human_durations() -> None:
    assert [human_duration(s) for s in (0, 45, 900, 43200, 86400 * 14, 90)] == ["0s", "45s", "15m", "12h",
                                                                               "14d", "90s"]


def test_checks_are_listed_once() -> None:
    assert len(set(CHECKS)) == len(CHECKS)
