"""The verbs that work on a stack in AWS: diff, apply, destroy, bootstrap (status: operate_verbs)."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import click

from .common import (
    EXIT_USAGE,
    Deadline,
    chosen_profile,
    deadline_option,
    machine_readable,
    options,
    reported,
    spec_options,
    track,
    within,
)

if TYPE_CHECKING:
    from ..cost.delta import CostDelta
    from ..deploy.aws import Aws
    from ..deploy.diff import TemplateDiff
    from ..deploy.markdown import Context as ReviewContext
    from ..deploy.operations import Target
    from ..deploy.preflight import Prepared
    from ..spec import App

_STACK_NAME = click.option("--stack-name", help="CloudFormation stack name (default <app>-<env>).")
# Which stack destroy acts on.
STACK_OPTIONS = options(spec_options(profile=False), _STACK_NAME)
# What apply and diff send: the spec, its stack, and the template's parameters, images and bucket.
DEPLOY_OPTIONS = options(
    spec_options(), _STACK_NAME,
    click.option("--param", "params", multiple=True, metavar="NAME=VALUE",
                 help="A template parameter (repeatable), e.g. VpcId=vpc-0abc."),
    click.option("--image", "images", multiple=True, metavar="SERVICE=URI",
                 help="Image of a service (repeatable); 'runtime' for the runtime roles."),
    click.option("--bucket", help="S3 bucket for templates over 51,200 bytes (default: fbc bootstrap's)."),
    click.option("--change-profile", is_flag=True,
                 help="Allow switching the deployed stack to another profile (what it deletes is listed)."))


def _pairs(values: tuple[str, ...], flag: str) -> dict[str, str]:
    out = {}
    for item in values:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"{item!r}: expected NAME=VALUE", param_hint=flag)
        out[key] = value
    return out


def _target(spec_file: str, profile: str | None, environment: str, stack_name: str | None) -> Target:
    from ..build import compile_spec
    from ..deploy.operations import Target

    compiled = compile_spec(spec_file, chosen_profile(spec_file, environment, profile), environment)
    return Target(compiled, stack_name or compiled.plan.stack_name)


def _given(target: Target, params: tuple[str, ...], images: tuple[str, ...]) -> dict[str, str]:
    """--param NAME=VALUE and --image SERVICE=URI as the template's parameters."""
    from ..deploy.parameters import image_parameters

    return {**_pairs(params, "--param"), **image_parameters(target.compiled, _pairs(images, "--image"))}


def _prepared(aws: Aws, target: Target, given: dict[str, str], bucket: str | None, change_profile: bool, *,
              strict: bool, notes: list[str] | None = None,
              refused: Callable[[Prepared], None] | None = None) -> dict[str, str]:
    """What diff and apply do before a change set (preflight.prepare), said on stderr (or kept in `notes`: diff
    --format json's object and the markdown comment hold them): the network picked, a profile switch (refused
    without --change-profile; `refused` is told first: diff --format markdown prints it as the comment), and
    the pre-flight's problems (apply: refused, nothing created; diff: warnings). FBC_PREFLIGHT=off skips the
    checks (a deploy role that may not read ECR, SSM or ACM). Returns the parameters to send."""
    from ..deploy.aws import DeployError
    from ..deploy.preflight import prepare

    def say(line: str) -> None:
        if notes is None:
            click.echo(line, err=True)
        else:
            notes.append(line)

    prepared = prepare(aws, target, given, bucket, say, strict=strict,
                       check=os.environ.get("FBC_PREFLIGHT", "on") != "off")
    if prepared.switch is not None:
        for line in prepared.switch.lines:
            click.echo(line, err=True)  # also with --format json: the refusal's reasons
        if not change_profile:
            if refused is not None:
                refused(prepared)
            raise DeployError(prepared.switch.refusal())
    for problem in prepared.problems:
        say(f"{'pre-flight' if strict else 'warning: pre-flight'}: {problem}")
    if strict and prepared.problems:
        raise DeployError(f"pre-flight found {len(prepared.problems)} problem(s) to fix first; nothing was created")
    return prepared.given


def _app(spec_file: str) -> App:
    """The spec as written (no environment merged): for its name and region."""
    from ..diagnostics import Invalid
    from ..validate import validate_file

    result = validate_file(spec_file)
    if result.app is None:
        raise Invalid(result.diagnostics)
    return result.app


def _stack(spec_file: str, environment: str, stack_name: str | None) -> tuple[str, str]:
    """(the stack's name, its region)."""
    from ..naming import stack_name as default_stack_name

    app = _app(spec_file)
    return stack_name or default_stack_name(app.metadata.name, environment), app.spec.region


def _aws(region: str) -> Aws:
    """AWS for this run: each retry said on stderr, and cleaned up after if the run is stopped."""
    from ..deploy.aws import connect

    return track(connect(region, notice=lambda line: click.echo(line, err=True)))


def _interactive() -> bool:
    return sys.stdin.isatty() and sys.stdout.isatty() and os.environ.get("CI") != "true"


def _confirm(question: str) -> bool:
    """A yes/no question on the terminal; the end of input (Ctrl-D) answers no (Ctrl-C stops the run)."""
    try:
        return click.confirm(question, default=False)
    except click.Abort:
        click.echo()
        return False


def _prompt(question: str) -> str:
    try:
        return str(click.prompt(question))
    except click.Abort:  # the end of input: nothing typed
        click.echo()
        return ""


def _template_file(path: str) -> dict[str, Any]:
    """--against FILE: a CloudFormation template in JSON or YAML, with Resources that have a Type each (what
    the diff reads); anything else is invalid input, said in one line (exit 2)."""
    import logging

    from cfnlint.decode import decode_str

    logging.getLogger("cfnlint").addHandler(logging.NullHandler())  # its errors are said here, once
    try:
        with open(path, encoding="utf-8") as file:
            text = file.read()
    except OSError as exc:
        raise OSError(f"--against {path}: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise ValueError(f"--against {path}: not UTF-8 text") from None
    doc, matches = decode_str(text)
    if doc is None:
        raise ValueError(f"--against {path}: not JSON or YAML ({matches[0].message if matches else 'unreadable'})")
    problem = _not_a_template(doc)
    if problem:
        raise ValueError(f"--against {path}: not a CloudFormation template: {problem}")
    return dict(doc)


def _not_a_template(doc: Any) -> str | None:
    """What keeps `doc` from being a template the diff can read, or None."""
    if not isinstance(doc, dict):
        return f"a {type(doc).__name__.removesuffix('_node')}, not a mapping of sections"
    if not isinstance(doc.get("Resources"), dict):
        return "no Resources mapping"
    for section in ("Parameters", "Outputs"):
        if not isinstance(doc.get(section, {}), dict):
            return f"{section} is not a mapping"
    for name, resource in doc["Resources"].items():
        if not isinstance(resource, dict) or not isinstance(resource.get("Type"), str):
            return f"resource {name} has no Type"
        if not isinstance(resource.get("Properties", {}), dict):
            return f"resource {name}'s Properties is not a mapping"
    return None


@click.command()
@DEPLOY_OPTIONS
@click.option("--against", default="deployed", show_default=True, metavar="deployed|FILE",
              help="Compare with the deployed stack, or offline with a template file.")
@click.option("--format", "fmt", type=click.Choice(["text", "json", "markdown"]), default="text", show_default=True,
              help="json: one object on stdout whatever happens ({\"error\": ..., \"exit\": 2} on errors); "
                   "markdown: a pull-request comment body (a refused profile switch is one too).")
@click.option("--cost", "with_cost", is_flag=True,
              help="Add the monthly cost delta (fbc cost's default usage, at the stack's region's prices).")
@click.option("--prices-region", metavar="REGION", help="--cost: price with another region's list prices.")
@deadline_option("10m")
def diff(spec_file: str, profile: str | None, environment: str, stack_name: str | None, params: tuple[str, ...],
         images: tuple[str, ...], bucket: str | None, change_profile: bool, against: str, fmt: str,
         with_cost: bool, prices_region: str | None, deadline: Deadline) -> None:
    """Show what apply would change. Exit 0: no differences, 1: differences (a stack not deployed is all
    additions), 2: error (as kubectl diff)."""
    import json

    from ..deploy import cost_view
    from ..deploy.diff import diff_templates, render_json, render_text, use_colour

    machine_readable(fmt == "json")
    deployed: bool | None = None  # None: compared offline
    before: dict[str, Any] | None = None  # the template compared with (for --cost)
    notes: list[str] = []  # --format json and markdown: the network picked and the pre-flight's warnings
    with within(deadline), reported(spec_file, "not compared", failed=EXIT_USAGE):  # 1 means "differences"
        target = _target(spec_file, profile, environment, stack_name)
        if against == "deployed":
            aws = _aws(target.compiled.plan.region)
            result, before = _against_stack(aws, target, _given(target, params, images), bucket, change_profile,
                                            fmt, notes)
            deployed = before is not None
        else:
            before = _template_file(against)
            result = diff_templates(before, target.template)
        cost = _cost_delta(target, before, prices_region, notes) if with_cost else None
        if fmt == "json":
            shown = json.loads(render_json(result)) | ({} if deployed is None else {"deployed": deployed}) | (
                {"notes": notes} if notes else {}) | ({} if cost is None else {"cost": cost_view.data(cost)})
            click.echo(json.dumps(shown, indent=2, sort_keys=True))
        elif fmt == "markdown":
            from ..deploy.markdown import render

            click.echo(render(result, _review_context(target, before, deployed, notes), cost), nl=False)
        else:
            click.echo(render_text(result, use_colour() and os.environ.get("TERM") != "dumb"))
            if cost is not None:
                click.echo(cost_view.text(cost))
    sys.exit(0 if result.empty else 1)


def _cost_delta(target: Target, before: dict[str, Any] | None, region: str | None,
                notes: list[str]) -> CostDelta | None:
    """What the change does to the monthly bill, with `fbc cost`'s default usage (before None: not deployed).
    A stack in a region the price file lacks gets its diff without cost (a note says why): a pull request's
    review should not fail over an estimate. A --prices-region the file lacks is an error."""
    from ..cost.delta import cost_delta
    from ..cost.prices import Prices, Unpriced, price_book
    from ..cost.usage import Usage

    book = price_book()
    try:
        prices = Prices(book, region or target.compiled.plan.region)
    except Unpriced as exc:
        if region is not None:
            raise
        note = f"cost not estimated: {exc}"
        notes.append(note)
        click.echo(f"fbc: {note}", err=True)
        return None
    return cost_delta(before, target.template, prices, Usage(spot_discount=book.fargate_spot_discount))


def _against_stack(aws: Aws, target: Target, given: dict[str, str], bucket: str | None, change_profile: bool,
                   fmt: str, notes: list[str]) -> tuple[TemplateDiff, dict[str, Any] | None]:
    """diff against the deployed stack: (the diff, the deployed template or None when not deployed). --format
    markdown prints a refused profile switch as the comment (what it deletes and why it was refused) before
    exiting 2."""
    from ..deploy.operations import diff_against_stack

    def comment(prepared: Prepared) -> None:
        from ..deploy.markdown import render_refused

        assert prepared.switch is not None
        shown = [*notes, *(f"warning: pre-flight: {problem}" for problem in prepared.problems)]
        click.echo(render_refused(_review_context(target, None, True, shown), prepared.switch.refusal(),
                                  prepared.switch.lines), nl=False)

    given = _prepared(aws, target, given, bucket, change_profile, strict=False,
                      notes=notes if fmt in ("json", "markdown") else None,
                      refused=comment if fmt == "markdown" else None)
    result, deployed = diff_against_stack(aws, target, given, bucket, lambda line: click.echo(line, err=True))
    if deployed is None:
        click.echo(f"{target.stack_name}: not deployed in {target.compiled.plan.region}; the whole template is new",
                   err=True)
    return result, deployed


def _review_context(target: Target, before: dict[str, Any] | None, deployed: bool | None,
                    notes: list[str]) -> ReviewContext:
    """The comment's context: the stack, and the parameters either template declares NoEcho (never shown)."""
    from ..deploy.markdown import Context

    secret = frozenset(name for doc in (before or {}, target.template)
                       for name, declared in (doc.get("Parameters") or {}).items()
                       if isinstance(declared, dict) and str(declared.get("NoEcho", "")).lower() == "true")
    plan = target.compiled.plan
    return Context(target.stack_name, plan.environment, plan.profile, deployed, secret, tuple(notes))


@click.command()
@DEPLOY_OPTIONS
@click.option("--yes", "-y", "assume_yes", is_flag=True, help="Do not ask; required in CI for risky changes.")
@deadline_option("2h")
def apply(spec_file: str, profile: str | None, environment: str, stack_name: str | None, params: tuple[str, ...],
          images: tuple[str, ...], bucket: str | None, change_profile: bool, assume_yes: bool,
          deadline: Deadline) -> None:
    """Build, create a change set, confirm what is risky, deploy and follow it to the end."""
    from ..deploy.operations import apply as run

    with within(deadline), reported():
        target = _target(spec_file, profile, environment, stack_name)
        aws = _aws(target.compiled.plan.region)
        given = _prepared(aws, target, _given(target, params, images), bucket, change_profile, strict=True)
        code = run(aws, target, given=given, assume_yes=assume_yes, interactive=_interactive(), bucket=bucket,
                   say=click.echo, confirm=_confirm)
    sys.exit(code)


@click.command()
@STACK_OPTIONS
@click.option("--yes", "-y", "assume_yes", is_flag=True, help="Do not ask (CI).")
@click.option("--confirm-stack", metavar="NAME", help="prod without a terminal: the stack's name, typed.")
@click.option("--disable-termination-protection", "disable_protection", is_flag=True,
              help="Turn the stack's termination protection off first (never done unasked).")
@deadline_option("2h")
def destroy(spec_file: str, environment: str, stack_name: str | None, assume_yes: bool,
            confirm_stack: str | None, disable_protection: bool, deadline: Deadline) -> None:
    """Delete the stack (prod, or a protected stack, asks you to type its name)."""
    from ..deploy.destroy import destroy as run

    with within(deadline), reported():
        name, region = _stack(spec_file, environment, stack_name)
        code = run(_aws(region), name, prod=environment == "prod", assume_yes=assume_yes, typed_name=confirm_stack,
                   disable_protection=disable_protection, interactive=_interactive(), say=click.echo,
                   confirm=_confirm, prompt=_prompt)
    sys.exit(code)


@click.command()
@spec_options(profile=False, env=False)
@click.option("--bucket", help="Bucket name (default fbc-assets-<account>-<region>).")
@deadline_option("5m")
def bootstrap(spec_file: str, bucket: str | None, deadline: Deadline) -> None:
    """Create the S3 bucket that templates over CloudFormation's inline limit are uploaded to."""
    from ..deploy.operations import bootstrap as run

    with within(deadline), reported():
        region = _app(spec_file).spec.region
        run(_aws(region), region, bucket, click.echo)
