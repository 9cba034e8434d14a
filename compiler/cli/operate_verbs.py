"""The verbs that operate what is deployed: status, logs, run, and secret (set, list).

status, logs and run read the stack's resources from CloudFormation, matched with the build's manifest
(deploy/status.py's Deployed); the build is made with the profile the stack was deployed with (its `profile`
tag) unless --profile says otherwise. secret reads only the spec: it works before the first deploy.
"""

from __future__ import annotations

import json
import sys
from typing import TYPE_CHECKING

import click

from .common import (
    EXIT_INVALID,
    Deadline,
    chosen_profile,
    deadline_option,
    fail,
    machine_readable,
    options,
    reported,
    spec_options,
    track,
    within,
)

if TYPE_CHECKING:
    from ..build import Compiled
    from ..deploy.aws import Aws
    from ..deploy.logs import Line
    from ..deploy.status import Deployed
    from ..emit.manifest import Manifest

_PROFILE = click.option("--profile", default=None, metavar="standard|ultra|PATH",
                        help="The profile the stack was deployed with (default: its profile tag, else standard).")
_STACK_NAME = click.option("--stack-name", help="CloudFormation stack name (default <app>-<env>).")
DEPLOYED_OPTIONS = options(spec_options(profile=False), _PROFILE, _STACK_NAME)
_FORMAT = click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)


def _note(line: str) -> None:
    click.echo(f"fbc: {line}", err=True)


def _aws(region: str) -> Aws:
    """AWS for this run: each retry said on stderr, and what is left said if the run is stopped."""
    from ..deploy.aws import connect

    return track(connect(region, notice=lambda line: click.echo(line, err=True)))


def _stack(spec_file: str, environment: str, stack_name: str | None) -> tuple[Aws, str]:
    """AWS in the spec's region, and the stack's name."""
    from ..naming import stack_name as default_stack_name
    from .deploy_verbs import _app

    app = _app(spec_file)
    return _aws(app.spec.region), stack_name or default_stack_name(app.metadata.name, environment)


def _build(aws: Aws, spec_file: str, profile: str | None, environment: str, name: str) -> Compiled | None:
    """The build of the deployed stack (its profile tag's, unless --profile); None when it is not deployed."""
    from ..build import compile_spec
    from ..deploy.aws import stack_tags

    tags = stack_tags(aws, name)
    if not tags and profile is None:
        return None
    return compile_spec(spec_file, profile or tags.get("profile") or chosen_profile(spec_file, environment, None),
                        environment)


def _deployed(spec_file: str, profile: str | None, environment: str,
              stack_name: str | None) -> tuple[Aws, Compiled, Deployed]:
    """What logs and run act on; a stack that is not deployed exits 1."""
    from ..deploy.status import deployed

    aws, name = _stack(spec_file, environment, stack_name)
    compiled = _build(aws, spec_file, profile, environment, name)
    stack = aws.cloudformation.describe(name)
    if compiled is None or stack is None or stack.status == "REVIEW_IN_PROGRESS":
        fail(f"{name}: not deployed", EXIT_INVALID)
    return aws, compiled, deployed(aws, name, compiled.manifest)


@click.command()
@DEPLOYED_OPTIONS
@click.option("--drift", is_flag=True, help="Also detect drift from the template (takes a while).")
@click.option("--events", default=10, show_default=True, type=click.IntRange(min=1),
              help="How many recent events to show.")
@deadline_option("10m")
def status(spec_file: str, environment: str, profile: str | None, stack_name: str | None, drift: bool, events: int,
           deadline: Deadline) -> None:
    """Stack state, outputs, last events; queues, dead letters, running tasks and the scheduler's last errors,
    each with its alarms; drift if asked. Exit 1 when not deployed."""
    from ..deploy.status import status as run

    with within(deadline), reported():
        aws, name = _stack(spec_file, environment, stack_name)

        def manifest() -> Manifest | None:
            compiled = _build(aws, spec_file, profile, environment, name)
            return compiled.manifest if compiled else None

        code = run(aws, name, drift=drift, events=events, say=click.echo, manifest=manifest)
    sys.exit(code)


@click.command()
@click.argument("source", required=False, metavar="[SERVICE|scheduler|worker]")
@DEPLOYED_OPTIONS
@click.option("--since", default="10m", show_default=True, metavar="DURATION", help="From how long ago: 30s, 1h, 2d.")
@click.option("--follow", is_flag=True, help="Keep polling for new events until Ctrl-C.")
@click.option("--filter", "pattern", metavar="PATTERN", help="A CloudWatch Logs filter pattern, e.g. ERROR.")
@_FORMAT
def logs(source: str | None, spec_file: str, environment: str, profile: str | None, stack_name: str | None,
         since: str, follow: bool, pattern: str | None, fmt: str) -> None:
    """CloudWatch Logs of the stack's services and scheduler, interleaved by time, each line after its source's
    name (as fbc up shows them). json: one object per line."""
    import time

    from ..deploy import logs as cloudwatch
    from ..local.processes import Logs
    from ..scalars import parse_duration

    machine_readable(fmt == "json")
    try:
        seconds = parse_duration(since)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--since") from None
    with reported():
        aws, compiled, found = _deployed(spec_file, profile, environment, stack_name)
        chosen = cloudwatch.groups(found, compiled.plan, source)
        out = Logs()
        out.width = max(len(g.source) for g in chosen)

        def show(line: Line) -> None:
            if fmt == "json":
                click.echo(json.dumps({"source": line.source, "timestamp": line.timestamp, "time": _iso(line),
                                       "message": line.message.rstrip("\n"), "logGroup": line.group,
                                       "logStream": line.stream}))
                return
            for text in line.message.rstrip("\n").splitlines() or [""]:
                out.line(line.source, f"{_iso(line)} {text}")

        start = int((time.time() - seconds) * 1000)
        if follow:
            cloudwatch.follow(aws, chosen, start, pattern, show, _note)  # until Ctrl-C (exit 130)
        else:
            for line in cloudwatch.read(aws, chosen, start, pattern, _note):
                show(line)


def _iso(line: Line) -> str:
    from datetime import UTC, datetime

    return f"{datetime.fromtimestamp(line.timestamp / 1000, UTC):%Y-%m-%dT%H:%M:%S.%f}"[:-3] + "Z"


@click.command()
@click.argument("schedule_name", metavar="SCHEDULE")
@DEPLOYED_OPTIONS
@click.option("--wait", is_flag=True, help="Invoke synchronously: show the execution's ID or the error.")
@deadline_option("10m")
def run(schedule_name: str, spec_file: str, environment: str, profile: str | None, stack_name: str | None,
        wait: bool, deadline: Deadline) -> None:
    """Fire one schedule now, through the deployed scheduler function, with its schedule's event (marked as a
    manual run, so never taken for a scheduled firing). Exit 1 when the function fails (--wait)."""
    from ..deploy import run as scheduler

    with within(deadline), reported():
        aws, compiled, found = _deployed(spec_file, profile, environment, stack_name)
        planned = scheduler.chosen(compiled.plan, schedule_name)
        if not planned.enabled:
            _note(f"{planned.name} is disabled in {environment}; firing it by hand anyway")
        outcome = scheduler.fire(aws, found, scheduler.event(aws, found, planned, _note), wait=wait)
        if not wait:
            click.echo(f"{planned.name}: fired ({outcome.mark}); the scheduler function accepted it (request "
                       f"{outcome.request_id}). --wait shows the execution; fbc logs scheduler shows what it did")
            return
        if outcome.error:
            click.echo(f"{planned.name}: failed ({outcome.mark}): {outcome.error}")
            for text in outcome.log_tail:
                click.echo(f"  {text}")
            sys.exit(EXIT_INVALID)
        click.echo(f"{planned.name}: execution {outcome.execution} "
                   f"{'created' if outcome.created else 'already existed'} ({outcome.mark})")


@click.group()
def secret() -> None:
    """The spec's secrets in SSM: set one (SecureString), list which exist. Values are never shown."""


@secret.command(name="set")
@click.argument("name")
@spec_options()
@click.option("--overwrite", is_flag=True, help="Replace an existing value.")
@deadline_option("5m")
def set_secret(name: str, spec_file: str, profile: str | None, environment: str, overwrite: bool,
               deadline: Deadline) -> None:
    """Write the spec's secret NAME (API_KEYS, say) for --env as an SSM SecureString. The value comes from
    stdin, or a prompt that does not echo it; never from the command line."""
    from ..build import plan_spec
    from ..deploy import secrets

    with within(deadline), reported():
        plan = plan_spec(spec_file, chosen_profile(spec_file, environment, profile), environment)
        ref = secrets.chosen(plan, name)
        secrets.writable(plan, ref)  # said before asking for a value that would not be written
        value = _read_value(f"{name} ({ref.parameter})")
        version = secrets.put(_aws(plan.region), plan, ref, value, overwrite=overwrite)
        click.echo(f"{name}: wrote {ref.parameter} (SSM SecureString, version {version}) in {plan.region}; tasks "
                   f"and functions read it when they start")


def _read_value(prompt: str) -> str:
    if not sys.stdin.isatty():
        value = sys.stdin.read()
        return value[:-1] if value.endswith("\n") else value  # echo VALUE | fbc secret set NAME
    try:
        return str(click.prompt(prompt, hide_input=True, confirmation_prompt=True, default="", show_default=False))
    except click.Abort:  # the end of input: nothing typed
        click.echo(err=True)
        return ""


@secret.command(name="list")
@spec_options()
@_FORMAT
@deadline_option("5m")
def list_secrets(spec_file: str, profile: str | None, environment: str, fmt: str, deadline: Deadline) -> None:
    """The spec's secret references for --env, and which exist (never their values). Exit 1 when one is
    missing."""
    from ..build import plan_spec
    from ..deploy import secrets

    machine_readable(fmt == "json")
    with within(deadline), reported():
        plan = plan_spec(spec_file, chosen_profile(spec_file, environment, profile), environment)
        refs = secrets.references(plan)
        found = secrets.look(_aws(plan.region), refs) if refs else []
    if fmt == "json":
        click.echo(json.dumps({"environment": environment, "region": plan.region, "secrets": [
            {"name": f.reference.name, "reference": f.reference.reference, "store": f.reference.store,
             "exists": f.exists, "detail": f.detail, "usedBy": list(f.reference.used_by)} for f in found]}, indent=2))
    else:
        click.echo(f"{plan.app} ({environment}, {plan.region}): {len(refs)} secret reference(s)")
        width = max((len(f.reference.name) for f in found), default=0)
        for f in found:
            users = f" (read by {', '.join(f.reference.used_by)})" if f.reference.used_by else ""
            hint = "" if f.exists or f.reference.store != "ssm" else (
                f": fbc secret set {f.reference.name} --env {environment}")
            click.echo(f"  {f.reference.name:<{width}}  {f.reference.reference}  {f.detail}{hint}{users}")
    sys.exit(0 if all(f.exists for f in found) else EXIT_INVALID)


VERBS = (status, logs, run, secret)
