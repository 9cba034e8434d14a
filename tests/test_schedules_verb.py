"""fbc schedules: each schedule's next firings from the spec alone, on hand-checked dates (calendars and the
daylight-saving changes read off `cal` and `TZ=... date`, not computed by the code under test).

2027's changes: Europe/Berlin springs forward on Sun 28 March (02:00 CET -> 03:00 CEST) and falls back on
Sun 31 October (03:00 CEST -> 02:00 CET); America/New_York springs forward on Sun 14 March (02:00 EST ->
03:00 EDT) and falls back on Sun 7 November (02:00 EDT -> 01:00 EST).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from conftest import REPO, run_fbc
from flowbuilder.compiler.local import cron

BASE: dict[str, Any] = {
    "apiVersion": "flowbuilder.dev/v1alpha1", "kind": "App", "metadata": {"name": "tiny"},
    "spec": {"region": "eu-west-1",
             "runtime": {"image": "210987654321.dkr.ecr.eu-west-1.amazonaws.com/tiny-runtime:2.3.1"},
             "queues": {"jobs": {}},
             "services": {"worker": {"type": "worker", "runtime": "worker", "queue": "jobs"}}}}


def spec(tmp_path: Path, schedules: dict[str, Any], environments: dict[str, Any] | None = None) -> str:
    data = json.loads(json.dumps(BASE))
    data["spec"]["schedules"] = schedules
    if environments:
        data["spec"]["environments"] = environments
    path = tmp_path / "flowbuilder.yaml"
    path.write_text(yaml.safe_dump(data), "utf-8")
    return str(path)


def report(*args: str) -> dict[str, Any]:
    result = run_fbc("schedules", "--format", "json", *args)
    assert result.exit_code == 0, result.stderr
    return json.loads(result.stdout)  # type: ignore[no-any-return]


def one(tmp_path: Path, schedule: dict[str, Any], start: str, count: int = 3) -> dict[str, Any]:
    found = report("-f", spec(tmp_path, {"job": {"workflow": "job", **schedule}}), "--from", start,
                   "--next", str(count))
    assert [s["name"] for s in found["schedules"]] == ["job"]
    return found["schedules"][0]  # type: ignore[no-any-return]


BERLIN, NEW_YORK = "Europe/Berlin", "America/New_York"


@pytest.mark.parametrize(("cron_expression", "zone", "start", "expected"), [
    # 02:30 does not exist in Berlin on 28 March 2027: skipped, not moved to 03:30
    ("30 2 * * ? *", BERLIN, "2027-03-27T00:00Z", [
        ("2027-03-27T02:30:00+01:00", "2027-03-27T01:30:00Z"),
        ("2027-03-29T02:30:00+02:00", "2027-03-29T00:30:00Z"),
        ("2027-03-30T02:30:00+02:00", "2027-03-30T00:30:00Z")]),
    # 02:30 happens twice in Berlin on 31 October 2027: it fires once, the first time (CEST)
    ("30 2 * * ? *", BERLIN, "2027-10-30T00:00Z", [
        ("2027-10-30T02:30:00+02:00", "2027-10-30T00:30:00Z"),
        ("2027-10-31T02:30:00+02:00", "2027-10-31T00:30:00Z"),
        ("2027-11-01T02:30:00+01:00", "2027-11-01T01:30:00Z")]),
    # New York skips 02:30 on 14 March 2027
    ("30 2 * * ? *", NEW_YORK, "2027-03-13T00:00Z", [
        ("2027-03-13T02:30:00-05:00", "2027-03-13T07:30:00Z"),
        ("2027-03-15T02:30:00-04:00", "2027-03-15T06:30:00Z"),
        ("2027-03-16T02:30:00-04:00", "2027-03-16T06:30:00Z")]),
    # New York falls back at 02:00 EDT to 01:00 EST: 02:30 happens once (EST) on 7 November ...
    ("30 2 * * ? *", NEW_YORK, "2027-11-06T00:00Z", [
        ("2027-11-06T02:30:00-04:00", "2027-11-06T06:30:00Z"),
        ("2027-11-07T02:30:00-05:00", "2027-11-07T07:30:00Z"),
        ("2027-11-08T02:30:00-05:00", "2027-11-08T07:30:00Z")]),
    # ... and 01:30 twice: the first (EDT) fires, the second does not
    ("30 1 * * ? *", NEW_YORK, "2027-11-06T00:00Z", [
        ("2027-11-06T01:30:00-04:00", "2027-11-06T05:30:00Z"),
        ("2027-11-07T01:30:00-04:00", "2027-11-07T05:30:00Z"),
        ("2027-11-08T01:30:00-05:00", "2027-11-08T06:30:00Z")]),
    # L: the month's last day, 29 February in the leap year 2028
    ("0 12 L * ? *", "UTC", "2027-12-15T00:00Z", [
        ("2027-12-31T12:00:00+00:00", "2027-12-31T12:00:00Z"),
        ("2028-01-31T12:00:00+00:00", "2028-01-31T12:00:00Z"),
        ("2028-02-29T12:00:00+00:00", "2028-02-29T12:00:00Z")]),
    # 15W: 15 May 2027 is a Saturday -> Friday 14th; 15 June a Tuesday, 15 July a Thursday: as they are
    ("0 9 15W * ? *", "UTC", "2027-05-01T00:00Z", [
        ("2027-05-14T09:00:00+00:00", "2027-05-14T09:00:00Z"),
        ("2027-06-15T09:00:00+00:00", "2027-06-15T09:00:00Z"),
        ("2027-07-15T09:00:00+00:00", "2027-07-15T09:00:00Z")]),
    # 15 August 2027 is a Sunday -> Monday 16th
    ("0 9 15W * ? *", BERLIN, "2027-08-01T00:00Z", [
        ("2027-08-16T09:00:00+02:00", "2027-08-16T07:00:00Z"),
        ("2027-09-15T09:00:00+02:00", "2027-09-15T07:00:00Z"),
        ("2027-10-15T09:00:00+02:00", "2027-10-15T07:00:00Z")]),
    # 1W: 1 May 2027 is a Saturday -> Monday 3rd (never back into April)
    ("0 9 1W * ? *", "UTC", "2027-04-15T00:00Z", [
        ("2027-05-03T09:00:00+00:00", "2027-05-03T09:00:00Z"),
        ("2027-06-01T09:00:00+00:00", "2027-06-01T09:00:00Z"),
        ("2027-07-01T09:00:00+00:00", "2027-07-01T09:00:00Z")]),
    # 6#3: the third Friday (1 = SUN): 15 Oct, 19 Nov, 17 Dec 2027
    ("0 10 ? * 6#3 *", "UTC", "2027-10-01T00:00Z", [
        ("2027-10-15T10:00:00+00:00", "2027-10-15T10:00:00Z"),
        ("2027-11-19T10:00:00+00:00", "2027-11-19T10:00:00Z"),
        ("2027-12-17T10:00:00+00:00", "2027-12-17T10:00:00Z")]),
    # MON#5: only months with five Mondays (March, May, August in 2027; not April, June, July)
    ("0 10 ? * MON#5 *", BERLIN, "2027-03-01T00:00Z", [
        ("2027-03-29T10:00:00+02:00", "2027-03-29T08:00:00Z"),
        ("2027-05-31T10:00:00+02:00", "2027-05-31T08:00:00Z"),
        ("2027-08-30T10:00:00+02:00", "2027-08-30T08:00:00Z")]),
    # 6L: the month's last Friday
    ("0 12 ? * 6L *", "UTC", "2027-10-01T00:00Z", [
        ("2027-10-29T12:00:00+00:00", "2027-10-29T12:00:00Z"),
        ("2027-11-26T12:00:00+00:00", "2027-11-26T12:00:00Z"),
        ("2027-12-31T12:00:00+00:00", "2027-12-31T12:00:00Z")]),
])
def test_next_firings_in_the_zone_and_in_utc(tmp_path: Path, cron_expression: str, zone: str, start: str,
                                             expected: list[tuple[str, str]]) -> None:
    found = one(tmp_path, {"cron": cron_expression, "timezone": zone}, start)
    assert found["expression"] == f"cron({cron_expression})"
    assert found["timezone"] == zone and found["enabled"] is True and found["ends"] is False
    assert [(n["local"], n["utc"]) for n in found["next"]] == expected


def test_a_rate_fires_from_the_start_then_every_interval_across_a_clock_change(tmp_path: Path) -> None:
    found = one(tmp_path, {"rate": "90 minutes", "timezone": BERLIN}, "2027-03-28T00:15Z")
    assert found["expression"] == "rate(90 minutes)"
    assert [(n["local"], n["utc"]) for n in found["next"]] == [
        ("2027-03-28T01:15:00+01:00", "2027-03-28T00:15:00Z"),
        ("2027-03-28T03:45:00+02:00", "2027-03-28T01:45:00Z"),
        ("2027-03-28T05:15:00+02:00", "2027-03-28T03:15:00Z")]


def test_a_firing_at_from_itself_counts_and_from_takes_an_offset(tmp_path: Path) -> None:
    found = one(tmp_path, {"cron": "0 3 * * ? *", "timezone": BERLIN}, "2027-01-10T03:00:00+01:00", 2)
    assert [n["utc"] for n in found["next"]] == ["2027-01-10T02:00:00Z", "2027-01-11T02:00:00Z"]
    # without an offset, --from is UTC
    found = one(tmp_path, {"cron": "0 3 * * ? *", "timezone": BERLIN}, "2027-01-10T02:00:01", 1)
    assert [n["utc"] for n in found["next"]] == ["2027-01-11T02:00:00Z"]


def test_a_schedule_that_never_fires_again_says_so(tmp_path: Path) -> None:
    found = one(tmp_path, {"cron": "0 0 1 1 ? 2028-2029"}, "2027-06-01T00:00Z", 5)
    assert [n["utc"] for n in found["next"]] == ["2028-01-01T00:00:00Z", "2029-01-01T00:00:00Z"]
    assert found["ends"] is True
    # exactly as many firings as asked, and none after them
    assert one(tmp_path, {"cron": "0 0 1 1 ? 2028-2029"}, "2027-06-01T00:00Z", 2)["ends"] is True
    assert one(tmp_path, {"cron": "0 0 1 1 ? 2028-2030"}, "2027-06-01T00:00Z", 2)["ends"] is False
    found = one(tmp_path, {"cron": "0 0 1 1 ? 2020"}, "2027-06-01T00:00Z")
    assert found["next"] == [] and found["ends"] is True
    path = spec(tmp_path, {"job": {"workflow": "job", "cron": "0 0 1 1 ? 2020"}})
    result = run_fbc("schedules", "-f", path, "--from", "2027-06-01T00:00Z")
    assert result.stdout.splitlines()[1:] == ["job: cron(0 0 1 1 ? 2020) in UTC, starts workflow job",
                                              "  never fires again"]


def test_disabled_schedules_are_listed_without_times_as_merged_for_the_environment(tmp_path: Path) -> None:
    path = spec(tmp_path, {"nightly": {"workflow": "report", "cron": "0 3 * * ? *", "timezone": BERLIN}},
                {"dev": {"schedules": {"nightly": {"enabled": False}}},
                 "prod": {"schedules": {"nightly": {"cron": "0 4 * * ? *"}}}})
    dev = report("-f", path, "--from", "2027-01-10T00:00Z")  # dev is the default, as for fbc up
    assert dev["environment"] == "dev"
    assert dev["schedules"] == [{"name": "nightly", "expression": "cron(0 3 * * ? *)", "timezone": BERLIN,
                                 "enabled": False, "workflow": "report", "next": [], "ends": None}]
    prod = report("-f", path, "--env", "prod", "--from", "2027-01-10T00:00Z", "--next", "1")
    assert prod["schedules"][0]["expression"] == "cron(0 4 * * ? *)"
    assert prod["schedules"][0]["next"] == [{"local": "2027-01-10T04:00:00+01:00", "utc": "2027-01-10T03:00:00Z"}]
    text = run_fbc("schedules", "-f", path, "--from", "2027-01-10T00:00Z").stdout
    assert "nightly: cron(0 3 * * ? *) in Europe/Berlin, starts workflow report: disabled, never fires" in text


def test_text_lists_each_schedule_with_local_and_utc_times(tmp_path: Path) -> None:
    path = spec(tmp_path, {"nightly": {"workflow": "report", "cron": "30 2 * * ? *", "timezone": BERLIN},
                           "poll": {"workflow": "poll", "rate": "1 hour"}})
    result = run_fbc("schedules", "-f", path, "--from", "2027-03-27T00:00:30Z", "--next", "2")
    assert result.exit_code == 0
    assert result.stdout == (
        "schedules (dev), from 2027-03-27 00:00:30 UTC:\n"
        "nightly: cron(30 2 * * ? *) in Europe/Berlin, starts workflow report\n"
        "  Sat 2027-03-27 02:30 CET (+01:00)   =  2027-03-27 01:30 UTC\n"
        "  Mon 2027-03-29 02:30 CEST (+02:00)  =  2027-03-29 00:30 UTC\n"
        "poll: rate(1 hour), starts workflow poll\n"
        "  (a rate fires when deployed, then every interval: counted from 2027-03-27 00:00:30 UTC)\n"
        "  Sat 2027-03-27 00:00:30 UTC (+00:00)  =  2027-03-27 00:00:30 UTC\n"
        "  Sat 2027-03-27 01:00:30 UTC (+00:00)  =  2027-03-27 01:00:30 UTC\n")


def test_the_repository_spec_and_the_default_start_now() -> None:
    found = report("-f", str(REPO / "flowbuilder.yaml"), "--env", "prod", "--next", "1")
    nightly = found["schedules"][0]
    assert (nightly["name"], nightly["workflow"], nightly["timezone"]) == ("nightly-report", "nightly-report",
                                                                           BERLIN)
    start = datetime.fromisoformat(found["from"])
    assert abs(start - datetime.now(UTC)) < timedelta(minutes=1)
    first = datetime.fromisoformat(nightly["next"][0]["utc"])
    assert start <= first <= start + timedelta(days=1)


def test_the_times_come_from_fbc_ups_timetable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """One implementation: the verb asks local/cron.py, so a change there shows here."""
    calls: list[datetime] = []

    def fake(_cron: object, after: datetime, _zone: object) -> datetime | None:
        calls.append(after)
        return None if calls[1:] else datetime(2031, 1, 1, tzinfo=UTC)

    monkeypatch.setattr(cron, "next_firing", fake)
    found = one(tmp_path, {"cron": "0 3 * * ? *"}, "2027-01-01T00:00Z")
    assert [n["utc"] for n in found["next"]] == ["2031-01-01T00:00:00Z"] and found["ends"] is True


def test_usage_and_spec_errors(tmp_path: Path) -> None:
    path = spec(tmp_path, {"job": {"workflow": "job", "cron": "0 3 * * ? *"}})
    bad_from = run_fbc("schedules", "-f", path, "--from", "next tuesday")
    assert bad_from.exit_code == 2 and "not an ISO 8601 time" in bad_from.stderr
    assert run_fbc("schedules", "-f", path, "--next", "0").exit_code == 2
    bad_env = run_fbc("schedules", "-f", path, "--env", "Prod")
    assert bad_env.exit_code == 2 and bad_env.stderr == (
        "fbc: --env 'Prod' is not a valid environment name (lowercase letters, digits, '-')\n")
    missing = run_fbc("schedules", "-f", str(tmp_path / "nope.yaml"), "--format", "json")
    assert missing.exit_code == 2 and json.loads(missing.stdout)["exit"] == 2
    invalid = spec(tmp_path, {"job": {"workflow": "job", "cron": "0 3 * * * *"}})
    result = run_fbc("schedules", "-f", invalid)
    assert result.exit_code == 1
    assert "spec.schedules.job.cron: '0 3 * * * *': exactly one of day-of-month and day-of-week" in result.stdout
    assert result.stderr.endswith(": no schedules shown\n")
