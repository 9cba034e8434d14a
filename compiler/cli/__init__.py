"""The `fbc` command: click verbs only. Each parses flags, calls one function, prints, sets the exit code.

Exit codes: 0 valid, 1 invalid, 2 usage or I/O error (click's own usage errors are 2 too), 3 a bug. One
decorator declares the options every verb shares, and one mapper (`_reported`) turns every error into output.
Imports are deferred into the verbs so `fbc validate` loads nothing it does not use (no boto3, no
troposphere) and starts fast.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar

import click

if TYPE_CHECKING:
    from .deploy.aws import Aws
    from .deploy.operations import Target
    from .spec import App

EXIT_INVALID = 1
EXIT_USAGE = 2
EXIT_INTERNAL = 3

F = TypeVar("F", bound=Callable[..., Any])
_PACKAGE = __name__.rpartition(".")[0]


def _fail(message: str, code: int = EXIT_USAGE) -> NoReturn:
    click.echo(f"fbc: {message}", err=True)
    sys.exit(code)


# --- errors ---------------------------------------------------------------------------------------------------

# Errors that mean what the verb could not do (exit 1, or 2 for diff), and errors of usage or input (exit 2),
# besides OSError and ValueError, by (module, class).
_FAILURES = ((".emit", "LimitError"), (".deploy.aws", "DeployError"))
_USAGE = ((".cost.prices", "Unpriced"), (".diagram.render", "NoGraphviz"), (".local.up", "UpError"),
          ("botocore.exceptions", "BotoCoreError"))


def _is(exc: Exception, module: str, name: str) -> bool:
    """isinstance(exc, module.name), asking only modules already loaded: a verb cannot raise an error of a
    module it never imported, so telling needs no import (fbc validate stays free of boto3 and troposphere)."""
    kind = getattr(sys.modules.get(_PACKAGE + module if module.startswith(".") else module), name, None)
    return isinstance(kind, type) and isinstance(exc, kind)


def _explained(exc: Exception, failed: int) -> tuple[str, int] | None:
    """One line and an exit code for an error the user can act on; None for a bug, which main reports."""
    first = (str(exc).splitlines() or [type(exc).__name__])[0]
    if _is(exc, "botocore.exceptions", "ClientError"):
        error = getattr(exc, "response", {}).get("Error", {})
        return f"AWS: {error.get('Code')}: {error.get('Message')}", failed
    if _is(exc, "botocore.parsers", "ResponseParserError"):  # an endpoint answering in no AWS format
        return f"AWS endpoint error: {first}", failed
    if any(_is(exc, module, name) for module, name in _FAILURES):  # LimitError before ValueError, its base
        return first, failed
    if isinstance(exc, (OSError, ValueError)) or any(_is(exc, module, name) for module, name in _USAGE):
        return first, EXIT_USAGE
    return None


@contextmanager
def _reported(spec_file: str = "", undone: str = "", *, failed: int = EXIT_INVALID) -> Iterator[None]:
    """The one error mapper of every verb. A spec's errors print located (file:line:column) on stdout, or on
    stderr when `failed` is not 1 (diff's stdout is the diff), then `fbc: <spec>: <undone>`, and exit
    `failed`; what the verb could not do (a resource limit, a refused deploy, AWS's answer) is one line that
    exits `failed`; a usage or I/O error is one line that exits 2."""
    from .diagnostics import Invalid, format_text

    try:
        yield
    except Invalid as exc:
        click.echo(format_text(exc.diagnostics), err=failed != EXIT_INVALID)
        if undone:
            _fail(f"{spec_file}: {undone}", failed)
        sys.exit(failed)
    except Exception as exc:
        explained = _explained(exc, failed)
        if explained is None:
            raise
        _fail(*explained)


def _write(path: str, text: str) -> None:
    """Write a file the user named; a failure names that file (not write_atomic's temporary one)."""
    from .files import write_atomic

    try:
        write_atomic(path, text)
    except OSError as exc:
        raise OSError(f"{path}: {exc.strerror or exc}") from None


# --- options --------------------------------------------------------------------------------------------------

def _options(*decorators: Callable[[F], F]) -> Callable[[F], F]:
    """Several click options as one decorator, listed in the order --help shows them."""
    def apply(fn: F) -> F:
        for decorator in reversed(decorators):
            fn = decorator(fn)
        return fn
    return apply


def _spec_options(*, profile: bool = True, env: bool = True, optional: bool = False) -> Callable[[F], F]:
    """-f/--file, --profile and --env, the same for every verb that reads a spec. `optional` (validate): no
    default profile or environment; without them validate checks the base spec and every environment."""
    options: list[Callable[[F], F]] = [
        click.option("-f", "--file", "spec_file", default="flowbuilder.yaml", show_default=True,
                     type=click.Path(dir_okay=False), help="The spec.")]
    if profile:
        options.append(click.option(
            "--profile", default=None if optional else "standard", show_default=not optional,
            metavar="standard|ultra|PATH", help=("Also run the checks this profile implies." if optional else
                                                 "How the spec becomes AWS resources.")))
    if env:
        options.append(click.option(
            "--env", "environment", default=None if optional else "dev", show_default=not optional, metavar="NAME",
            help=("Validate the spec as merged for this environment (default: base and every environment)."
                  if optional else "Environment: selects the spec's and the profile's overlays; the stack is "
                                   "<app>-<env>.")))
    return _options(*options)


_STACK_NAME = click.option("--stack-name", help="CloudFormation stack name (default <app>-<env>).")
# What apply and diff send: the spec, its stack, and the template's parameters, images and bucket.
_DEPLOY_OPTIONS: Callable[[F], F] = _options(
    _spec_options(), _STACK_NAME,
    click.option("--param", "params", multiple=True, metavar="NAME=VALUE",
                 help="A template parameter (repeatable), e.g. VpcId=vpc-0abc."),
    click.option("--image", "images", multiple=True, metavar="SERVICE=URI",
                 help="Image of a service (repeatable); 'runtime' for the runtime roles."),
    click.option("--bucket", help="S3 bucket for templates over 51,200 bytes (default: fbc bootstrap's)."))


# --- verbs ----------------------------------------------------------------------------------------------------

@click.group(name="fbc", context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(package_name="flowbuilder", prog_name="fbc")  # looked up only when asked
def cli() -> None:
    """Flow Builder compiler: flowbuilder.yaml -> AWS CloudFormation."""


@cli.command()
@_spec_options(optional=True)
@click.option("--format", "fmt", type=click.Choice(["text", "json", "github"]), default="text",
              show_default=True, help="text for people, github for Actions annotations, json for tools.")
def validate(spec_file: str, environment: str | None, profile: str | None, fmt: str) -> None:
    """Check flowbuilder.yaml and print every problem, one line each, sorted by position."""
    import re

    from .diagnostics import FORMATTERS, Invalid
    from .profiles import resolve
    from .scalars import NAME_PATTERN
    from .validate import validate_file

    with _reported():
        if environment is not None and not re.match(NAME_PATTERN, environment):
            raise ValueError(f"--env {environment!r} is not a valid environment name (lowercase letters, digits, "
                             f"'-')")
        try:
            result = validate_file(spec_file, environment=environment,
                                   profile=resolve(profile, environment) if profile else None)
            diagnostics, valid = result.diagnostics, result.valid
        except Invalid as exc:  # here the spec's errors are the answer, not a failure
            diagnostics, valid = exc.diagnostics, False
    output = FORMATTERS[fmt](diagnostics)
    if output or fmt == "json":
        click.echo(output)
    if fmt == "text":  # the summary goes to stderr so stdout holds only diagnostics
        errors = sum(d.severity == "error" for d in diagnostics)
        warnings = len(diagnostics) - errors
        summary = f"{spec_file}: valid" if valid else f"{spec_file}: {errors} error(s)"
        click.echo(summary + (f", {warnings} warning(s)" if warnings else ""), err=True)
    sys.exit(0 if valid else EXIT_INVALID)


@cli.command()
@_spec_options()
@click.option("-o", "--output", "out_dir", default="build", show_default=True, type=click.Path(file_okay=False),
              help="Directory for <stack>.template.<format> and <stack>.parameters.json.")
@click.option("--format", "fmt", type=click.Choice(["json", "yaml"]), default="json", show_default=True,
              help="Template format.")
def build(spec_file: str, profile: str, environment: str, out_dir: str, fmt: str) -> None:
    """Compile flowbuilder.yaml into a CloudFormation template and a parameters file."""
    from .build import compile_spec, write
    from .diagnostics import format_text

    with _reported(spec_file, "not built"):
        compiled = compile_spec(spec_file, profile, environment)
        paths = write(compiled, out_dir, fmt)  # type: ignore[arg-type]
    if compiled.warnings:
        click.echo(format_text(compiled.warnings), err=True)
    click.echo(compiled.summary())
    for path in paths:
        click.echo(f"wrote {path}")
    click.echo(compiled.suppression_summary())  # the template is in a file, so this stays on stdout


@cli.command()
@_spec_options()
@click.option("--database-url", metavar="URL",
              help="A database for fbc up alone (default: SQLite in .flowbuilder/ beside the spec).")
@click.option("--port", default=8000, show_default=True, type=click.IntRange(0, 65535),
              help="Port of the API on 127.0.0.1 (further API services take the next ones; 0: any free port).")
@click.option("--smoke", is_flag=True,
              help="Start everything, run one sample workflow through queue and worker, print it, stop.")
def up(spec_file: str, profile: str, environment: str, database_url: str | None, port: int, smoke: bool) -> None:
    """Run the application on this machine: queues, database, API, workers, schedules. The profile decides
    the workers: a scaled poll pool (standard) or one process per message (ultra)."""
    import signal
    import threading

    from .build import plan_spec
    from .local.processes import Logs
    from .local.up import Options
    from .local.up import up as run_up

    with _reported(spec_file, "not started"):
        plan = plan_spec(spec_file, profile, environment)
        stop = threading.Event()
        for number in (signal.SIGINT, signal.SIGTERM):
            signal.signal(number, lambda *_: stop.set())
        code = run_up(plan, Options(Path(spec_file), database_url, port, smoke), Logs(), stop)
    sys.exit(code)


@cli.command()
@_spec_options()
@click.option("--compare", metavar="P1,P2", help="Estimate several profiles side by side, e.g. standard,ultra.")
@click.option("--executions-per-month", default=10_000, show_default=True, type=click.IntRange(0))
@click.option("--avg-duration", default="30s", show_default=True, metavar="DURATION",
              help="How long one execution runs (30s, 5m or seconds).")
@click.option("--requests-per-month", default=100_000, show_default=True, type=click.IntRange(0),
              help="HTTP requests to each public web service.")
@click.option("--spot-discount", type=click.FloatRange(0, 1, max_open=True), metavar="0..1",
              help="Fargate Spot's discount to on-demand (default: the price file's, 0.70).")
@click.option("--prices-region", metavar="REGION", help="Price with another region's list prices.")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
def cost(spec_file: str, profile: str, environment: str, compare: str | None, executions_per_month: int,
         avg_duration: str, requests_per_month: int, spot_discount: float | None, prices_region: str | None,
         fmt: str) -> None:
    """Estimate what a deployment costs a month: idle and usage, at list price and after AWS's free tier."""
    from .build import compile_spec
    from .cost.estimate import estimate
    from .cost.prices import Prices, price_book
    from .cost.report import comparison, json_text, text
    from .cost.usage import Usage
    from .scalars import parse_duration

    with _reported(spec_file, "not estimated"):
        try:
            duration = float(parse_duration(avg_duration))
        except ValueError as exc:
            raise ValueError(f"--avg-duration {avg_duration!r}: {exc}") from None
        book = price_book()
        usage = Usage(executions_per_month, duration, requests_per_month,
                      book.fargate_spot_discount if spot_discount is None else spot_discount)
        estimates = []
        for name in [p.strip() for p in compare.split(",") if p.strip()] if compare else [profile]:
            compiled = compile_spec(spec_file, name, environment)
            estimates.append(estimate(compiled, Prices(book, prices_region or compiled.plan.region), usage))
    if fmt == "json":
        click.echo(json_text(estimates))
    elif len(estimates) > 1:
        click.echo(comparison(estimates))
    else:
        click.echo(text(estimates[0]))


@cli.command()
@_spec_options()
@click.option("--format", "fmt", type=click.Choice(["mermaid", "dot", "svg"]), default="mermaid", show_default=True,
              help="mermaid renders in GitHub Markdown; svg runs Graphviz's dot.")
@click.option("-o", "--output", type=click.Path(dir_okay=False), help="Write to a file instead of stdout.")
def graph(spec_file: str, profile: str, environment: str, fmt: str, output: str | None) -> None:
    """Draw the compiled architecture: clients, ingress, services, queues, pipes, schedules, database."""
    from .build import compile_spec
    from .diagram.model import build as build_diagram
    from .diagram.render import RENDERERS

    with _reported(spec_file, "not drawn"):
        rendered = RENDERERS[fmt](build_diagram(compile_spec(spec_file, profile, environment)))
        if output:
            _write(output, rendered)
    if output:
        click.echo(f"wrote {output}", err=True)
    else:
        click.echo(rendered, nl=False)


@cli.command()
@click.option("-o", "--output", type=click.Path(dir_okay=False), help="Write the schema to a file.")
@click.option("--profile", "of_profile", is_flag=True, help="The schema of profile files (kind: Profile) instead.")
@click.option("--vscode", "workspace", type=click.Path(file_okay=False), is_flag=False, flag_value=".",
              help="Write flowbuilder.schema.json and the yaml.schemas mapping in .vscode/settings.json "
                   "into a workspace (default: the current directory).")
def schema(output: str | None, of_profile: bool, workspace: str | None) -> None:
    """Print the JSON Schema of flowbuilder.yaml (for editors and tools)."""
    from .schema import profile_schema, render, write_vscode

    with _reported():
        if workspace is not None:
            for path in write_vscode(Path(workspace)):
                click.echo(f"wrote {path}")
            return
        text = render(profile_schema() if of_profile else None)
        if output:
            _write(output, text)
            click.echo(f"wrote {output}")
            return
    click.echo(text, nl=False)


@cli.command()
@click.option("--name", help="Application name (default: the directory's name, made DNS-safe).")
@click.option("--region", default="us-east-1", show_default=True, help="AWS region.")
@click.option("--account", default="123456789012", show_default=True, help="AWS account of the ECR images.")
@click.option("--force", is_flag=True, help="Overwrite an existing flowbuilder.yaml.")
@click.argument("directory", default=".", type=click.Path(file_okay=False))
def init(name: str | None, region: str, account: str, force: bool, directory: str) -> None:
    """Write a starter flowbuilder.yaml (with its schema, for editor completion) into DIRECTORY."""
    from .files import write_atomic
    from .schema import SCHEMA_FILE, render
    from .starter import app_name, starter

    target = Path(directory)
    spec_path = target / "flowbuilder.yaml"
    with _reported():
        if spec_path.exists() and not force:
            raise FileExistsError(f"{spec_path} exists; pass --force to overwrite it")
        text = starter(name or app_name(target.resolve().name), region, account)
        write_atomic(target / SCHEMA_FILE, render())
        write_atomic(spec_path, text)
    click.echo(f"wrote {spec_path} and {target / SCHEMA_FILE}; next: fbc validate -f {spec_path}")


# --- deploy ---------------------------------------------------------------------------------------------------

def _pairs(values: tuple[str, ...], flag: str) -> dict[str, str]:
    out = {}
    for item in values:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"{item!r}: expected NAME=VALUE", param_hint=flag)
        out[key] = value
    return out


def _target(spec_file: str, profile: str, environment: str, stack_name: str | None) -> Target:
    from .build import compile_spec
    from .deploy.operations import Target

    compiled = compile_spec(spec_file, profile, environment)
    return Target(compiled, stack_name or compiled.plan.stack_name)


def _given(target: Target, params: tuple[str, ...], images: tuple[str, ...]) -> dict[str, str]:
    """--param NAME=VALUE and --image SERVICE=URI as the template's parameters."""
    from .deploy.operations import image_parameters

    return {**_pairs(params, "--param"), **image_parameters(target.compiled, _pairs(images, "--image"))}


def _app(spec_file: str) -> App:
    """The spec as written (no environment merged): for its name and region."""
    from .diagnostics import Invalid
    from .validate import validate_file

    result = validate_file(spec_file)
    if result.app is None:
        raise Invalid(result.diagnostics)
    return result.app


def _stack(spec_file: str, environment: str, stack_name: str | None) -> tuple[str, str]:
    """(the stack's name, its region)."""
    from .naming import stack_name as default_stack_name

    app = _app(spec_file)
    return stack_name or default_stack_name(app.metadata.name, environment), app.spec.region


def _aws(region: str) -> Aws:
    from .deploy.aws import connect

    return connect(region)


def _interactive() -> bool:
    return sys.stdin.isatty() and sys.stdout.isatty() and os.environ.get("CI") != "true"


def _confirm(question: str) -> bool:
    return click.confirm(question, default=False)


@cli.command()
@_DEPLOY_OPTIONS
@click.option("--against", default="deployed", show_default=True, metavar="deployed|FILE",
              help="Compare with the deployed stack, or offline with a template file.")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
def diff(spec_file: str, profile: str, environment: str, stack_name: str | None, params: tuple[str, ...],
         images: tuple[str, ...], bucket: str | None, against: str, fmt: str) -> None:
    """Show what apply would change. Exit 0: no differences, 1: differences, 2: error (as kubectl diff)."""
    from .deploy.diff import diff_templates, render_json, render_text, use_colour
    from .deploy.operations import diff_against_stack

    with _reported(failed=EXIT_USAGE):  # 1 means "differences"
        target = _target(spec_file, profile, environment, stack_name)
        if against == "deployed":
            result = diff_against_stack(_aws(target.compiled.plan.region), target, _given(target, params, images),
                                        bucket, lambda line: click.echo(line, err=True))
        else:
            from cfnlint.decode import decode

            old, matches = decode(against)
            if old is None:
                raise ValueError(f"{against}: not a CloudFormation template ({matches[0].message if matches else ''})")
            result = diff_templates(dict(old), target.template)
        click.echo(render_json(result) if fmt == "json" else render_text(result, use_colour()))
    sys.exit(0 if result.empty else 1)


@cli.command()
@_DEPLOY_OPTIONS
@click.option("--yes", "-y", "assume_yes", is_flag=True, help="Do not ask; required in CI for risky changes.")
def apply(spec_file: str, profile: str, environment: str, stack_name: str | None, params: tuple[str, ...],
          images: tuple[str, ...], bucket: str | None, assume_yes: bool) -> None:
    """Build, create a change set, confirm what is risky, deploy and follow it to the end."""
    from .deploy.operations import apply as run

    with _reported():
        target = _target(spec_file, profile, environment, stack_name)
        code = run(_aws(target.compiled.plan.region), target, given=_given(target, params, images),
                   assume_yes=assume_yes, interactive=_interactive(), bucket=bucket, say=click.echo, confirm=_confirm)
    sys.exit(code)


@cli.command()
@_options(_spec_options(profile=False), _STACK_NAME)
@click.option("--yes", "-y", "assume_yes", is_flag=True, help="Do not ask (CI).")
@click.option("--confirm-stack", metavar="NAME", help="prod without a terminal: the stack's name, typed.")
def destroy(spec_file: str, environment: str, stack_name: str | None, assume_yes: bool,
            confirm_stack: str | None) -> None:
    """Delete the stack (prod asks you to type its name)."""
    from .deploy.operations import destroy as run

    with _reported():
        name, region = _stack(spec_file, environment, stack_name)
        code = run(_aws(region), name, prod=environment == "prod", assume_yes=assume_yes, typed_name=confirm_stack,
                   interactive=_interactive(), say=click.echo, confirm=_confirm, prompt=lambda q: click.prompt(q))
    sys.exit(code)


@cli.command()
@_options(_spec_options(profile=False), _STACK_NAME)
@click.option("--drift", is_flag=True, help="Also detect drift from the template (takes a while).")
@click.option("--events", default=10, show_default=True, help="How many recent events to show.")
def status(spec_file: str, environment: str, stack_name: str | None, drift: bool, events: int) -> None:
    """Stack state, outputs, last events, and drift if asked. Exit 1 when not deployed."""
    from .deploy.operations import status as run

    with _reported():
        name, region = _stack(spec_file, environment, stack_name)
        code = run(_aws(region), name, drift=drift, events=events, say=click.echo)
    sys.exit(code)


@cli.command()
@_spec_options(profile=False, env=False)
@click.option("--bucket", help="Bucket name (default fbc-assets-<account>-<region>).")
def bootstrap(spec_file: str, bucket: str | None) -> None:
    """Create the S3 bucket that templates over CloudFormation's inline limit are uploaded to."""
    from .deploy.operations import bootstrap as run

    with _reported():
        region = _app(spec_file).spec.region
        run(_aws(region), region, bucket, click.echo)


def main() -> None:
    try:
        cli.main(prog_name="fbc")
    except KeyboardInterrupt:
        sys.exit(130)
    except Exception as exc:  # never a traceback for the user; FBC_DEBUG=1 shows it
        if os.environ.get("FBC_DEBUG"):
            raise
        click.echo(f"fbc: internal error: {type(exc).__name__}: {exc} (FBC_DEBUG=1 shows the traceback; "
                   f"please report it)", err=True)
        sys.exit(EXIT_INTERNAL)
