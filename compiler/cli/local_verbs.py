"""The verbs that answer from the spec or its schema alone, with no AWS and nothing started: schedules, explain."""

from __future__ import annotations

from datetime import UTC, datetime

import click

from .common import machine_readable, reported, spec_options


def _moment(_ctx: click.Context, _param: click.Parameter, value: str | None) -> datetime:
    from ..local.timetable_report import parse_moment

    if value is None:
        return datetime.now(UTC).replace(microsecond=0)
    try:
        return parse_moment(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None


@click.command()
@spec_options(profile=False)
@click.option("--next", "count", default=5, show_default=True, type=click.IntRange(1, 1000),
              help="How many firings to show for each schedule.")
@click.option("--from", "start", metavar="TIME", callback=_moment,
              help="Count firings from this ISO 8601 time (2027-03-28T01:30:00+01:00; no offset: UTC) "
                   "[default: now].")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
def schedules(spec_file: str, environment: str, count: int, start: datetime, fmt: str) -> None:
    """Show each schedule's next firings, in its time zone and in UTC, as `fbc up` and EventBridge Scheduler
    fire them (daylight saving included). From the spec alone; no AWS."""
    import re

    from ..diagnostics import Invalid
    from ..local import timetable_report
    from ..plan import schedule_plans
    from ..scalars import NAME_PATTERN
    from ..validate import validate_file

    machine_readable(fmt == "json")
    with reported(spec_file, "no schedules shown"):
        if not re.match(NAME_PATTERN, environment):
            raise ValueError(f"--env {environment!r} is not a valid environment name (lowercase letters, digits, "
                             f"'-')")
        result = validate_file(spec_file, environment=environment)
        if not result.valid or result.app is None:
            raise Invalid(result.diagnostics)
        report = timetable_report.upcoming(schedule_plans(result.app), start, count)
    render = timetable_report.json_text if fmt == "json" else timetable_report.text
    click.echo(render(report, start, environment))


@click.command()
@click.argument("path", default="")
@click.option("--type", "variant", metavar="TYPE",
              help="Where the path passes a union of types (services: web or worker), explain this one only.")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
def explain(path: str, variant: str | None, fmt: str) -> None:
    """Explain a field of flowbuilder.yaml from its JSON Schema: type, default, allowed values, description,
    examples and fields, e.g. spec.services.worker.scaling (a map's key such as worker, or '*', stands for
    any entry). A leading 'profile.' explains a profile file's field instead (profile.spec.network)."""
    from .. import explain as explaining
    from ..schema import app_schema, profile_schema

    machine_readable(fmt == "json")
    with reported():
        document, inner = explaining.document(path)
        profile = document == "Profile"
        explained = explaining.explain(profile_schema() if profile else app_schema(), inner, variant,
                                       root=(explaining.PROFILE,) if profile else ())
    click.echo(explaining.json_text(document, explained) if fmt == "json" else explaining.text(explained))
