"""The `fbc` command: click verbs only. Each parses flags, calls one function, prints, sets the exit code.

Exit codes: 0 valid, 1 invalid, 2 usage or I/O error (click's own usage errors are 2 too).
Imports are deferred into the verbs so `fbc validate` loads nothing it does not use (no boto3, no
troposphere) and starts fast.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

EXIT_INVALID = 1
EXIT_USAGE = 2
EXIT_INTERNAL = 3


def _fail(message: str, code: int = EXIT_USAGE) -> None:
    click.echo(f"fbc: {message}", err=True)
    sys.exit(code)


@click.group(name="fbc", context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(package_name="flowbuilder", prog_name="fbc")  # looked up only when asked
def cli() -> None:
    """Flow Builder compiler: flowbuilder.yaml -> AWS CloudFormation."""


@cli.command()
@click.option("-f", "--file", "spec_file", default="flowbuilder.yaml", show_default=True,
              type=click.Path(dir_okay=False), help="The spec to validate.")
@click.option("--env", "environment", metavar="NAME",
              help="Validate the spec as merged for this environment (default: base and every environment).")
@click.option("--profile", metavar="NAME|PATH",
              help="Also run the checks this profile implies (standard, ultra or a profile file).")
@click.option("--format", "fmt", type=click.Choice(["text", "json", "github"]), default="text",
              show_default=True, help="text for people, github for Actions annotations, json for tools.")
def validate(spec_file: str, environment: str | None, profile: str | None, fmt: str) -> None:
    """Check flowbuilder.yaml and print every problem, one line each, sorted by position."""
    from .diagnostics import FORMATTERS, Invalid
    from .validate import validate_file

    if environment is not None:
        import re

        from .scalars import NAME_PATTERN

        if not re.match(NAME_PATTERN, environment):
            _fail(f"--env {environment!r} is not a valid environment name (lowercase letters, digits, '-')")
    try:
        resolved = None
        if profile:
            from .profiles import resolve

            resolved = resolve(profile, environment)
        result = validate_file(spec_file, environment=environment, profile=resolved)
        diagnostics = result.diagnostics
        valid = result.valid
    except Invalid as exc:
        diagnostics, valid = exc.diagnostics, False
    except (OSError, ValueError) as exc:
        _fail(str(exc))
        return
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
@click.option("-f", "--file", "spec_file", default="flowbuilder.yaml", show_default=True,
              type=click.Path(dir_okay=False), help="The spec to compile.")
@click.option("--profile", default="standard", show_default=True, metavar="standard|ultra|PATH",
              help="How the spec becomes AWS resources.")
@click.option("--env", "environment", default="dev", show_default=True, metavar="NAME",
              help="Environment: selects the spec's and the profile's overlays; the stack is <app>-<env>.")
@click.option("-o", "--output", "out_dir", default="build", show_default=True, type=click.Path(file_okay=False),
              help="Directory for <stack>.template.<format> and <stack>.parameters.json.")
@click.option("--format", "fmt", type=click.Choice(["json", "yaml"]), default="json", show_default=True,
              help="Template format.")
def build(spec_file: str, profile: str, environment: str, out_dir: str, fmt: str) -> None:
    """Compile flowbuilder.yaml into a CloudFormation template and a parameters file."""
    from .build import compile_spec, write
    from .diagnostics import Invalid, format_text
    from .emit import LimitError

    try:
        compiled = compile_spec(spec_file, profile, environment)
        paths = write(compiled, out_dir, fmt)  # type: ignore[arg-type]
    except Invalid as exc:
        click.echo(format_text(exc.diagnostics))
        click.echo(f"{spec_file}: not built", err=True)
        sys.exit(EXIT_INVALID)
    except LimitError as exc:
        _fail(str(exc), EXIT_INVALID)
        return
    except (OSError, ValueError) as exc:
        _fail(str(exc))
        return
    if compiled.warnings:
        click.echo(format_text(compiled.warnings), err=True)
    click.echo(compiled.summary())
    for path in paths:
        click.echo(f"wrote {path}")
    click.echo(compiled.suppression_summary())  # the template is in a file, so this stays on stdout


@cli.command()
@click.option("-f", "--file", "spec_file", default="flowbuilder.yaml", show_default=True,
              type=click.Path(dir_okay=False), help="The spec to run.")
@click.option("--profile", default="standard", show_default=True, metavar="standard|ultra|PATH",
              help="Whose worker behaviour to run: a scaled poll pool (standard) or one process per message "
                   "(ultra).")
@click.option("--env", "environment", default="dev", show_default=True, metavar="NAME",
              help="Environment whose overlays apply.")
@click.option("--database-url", metavar="URL",
              help="A database for fbc up alone (default: SQLite in .flowbuilder/ beside the spec).")
@click.option("--port", default=8000, show_default=True, type=click.IntRange(0, 65535),
              help="Port of the API on 127.0.0.1 (further API services take the next ones; 0: any free port).")
@click.option("--smoke", is_flag=True,
              help="Start everything, run one sample workflow through queue and worker, print it, stop.")
def up(spec_file: str, profile: str, environment: str, database_url: str | None, port: int, smoke: bool) -> None:
    """Run the application on this machine: queues, database, API, workers, schedules."""
    import signal
    import threading

    from .build import plan_spec
    from .diagnostics import Invalid, format_text
    from .local.processes import Logs
    from .local.up import Options, UpError
    from .local.up import up as run_up

    try:
        plan = plan_spec(spec_file, profile, environment)
    except Invalid as exc:
        click.echo(format_text(exc.diagnostics))
        _fail(f"{spec_file}: not started", EXIT_INVALID)
        return
    except (OSError, ValueError) as exc:
        _fail(str(exc))
        return
    stop = threading.Event()
    for number in (signal.SIGINT, signal.SIGTERM):
        signal.signal(number, lambda *_: stop.set())
    try:
        code = run_up(plan, Options(Path(spec_file), database_url, port, smoke), Logs(), stop)
    except UpError as exc:
        _fail(str(exc))
        return
    sys.exit(code)


@cli.command()
@click.option("-f", "--file", "spec_file", default="flowbuilder.yaml", show_default=True,
              type=click.Path(dir_okay=False), help="The spec to estimate.")
@click.option("--profile", default="standard", show_default=True, metavar="standard|ultra|PATH")
@click.option("--env", "environment", default="dev", show_default=True, metavar="NAME")
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
    from .cost.prices import Prices, Unpriced, price_book
    from .cost.report import comparison, json_text, text
    from .cost.usage import Usage
    from .diagnostics import Invalid, format_text
    from .emit import LimitError
    from .scalars import parse_duration

    try:
        duration = float(parse_duration(avg_duration))
    except ValueError as exc:
        _fail(f"--avg-duration {avg_duration!r}: {exc}")
        return
    book = price_book()
    usage = Usage(executions_per_month, duration, requests_per_month,
                  book.fargate_spot_discount if spot_discount is None else spot_discount)
    profiles = [p.strip() for p in compare.split(",") if p.strip()] if compare else [profile]
    try:
        estimates = []
        for name in profiles:
            compiled = compile_spec(spec_file, name, environment)
            estimates.append(estimate(compiled, Prices(book, prices_region or compiled.plan.region), usage))
    except Invalid as exc:
        click.echo(format_text(exc.diagnostics))
        _fail(f"{spec_file}: not estimated", EXIT_INVALID)
        return
    except (LimitError, Unpriced) as exc:
        _fail(str(exc), EXIT_INVALID if isinstance(exc, LimitError) else EXIT_USAGE)
        return
    except (OSError, ValueError) as exc:
        _fail(str(exc))
        return
    if fmt == "json":
        click.echo(json_text(estimates))
    elif len(estimates) > 1:
        click.echo(comparison(estimates))
    else:
        click.echo(text(estimates[0]))


@cli.command()
@click.option("-f", "--file", "spec_file", default="flowbuilder.yaml", show_default=True,
              type=click.Path(dir_okay=False), help="The spec to draw.")
@click.option("--profile", default="standard", show_default=True, metavar="standard|ultra|PATH")
@click.option("--env", "environment", default="dev", show_default=True, metavar="NAME")
@click.option("--format", "fmt", type=click.Choice(["mermaid", "dot", "svg"]), default="mermaid", show_default=True,
              help="mermaid renders in GitHub Markdown; svg runs Graphviz's dot.")
@click.option("-o", "--output", type=click.Path(dir_okay=False), help="Write to a file instead of stdout.")
def graph(spec_file: str, profile: str, environment: str, fmt: str, output: str | None) -> None:
    """Draw the compiled architecture: clients, ingress, services, queues, pipes, schedules, database."""
    from .build import compile_spec
    from .diagnostics import Invalid, format_text
    from .diagram.model import build as build_diagram
    from .diagram.render import RENDERERS, NoGraphviz
    from .emit import LimitError
    from .files import write_atomic

    try:
        rendered = RENDERERS[fmt](build_diagram(compile_spec(spec_file, profile, environment)))
    except Invalid as exc:
        click.echo(format_text(exc.diagnostics))
        _fail(f"{spec_file}: not drawn", EXIT_INVALID)
        return
    except LimitError as exc:
        _fail(str(exc), EXIT_INVALID)
        return
    except (OSError, ValueError, NoGraphviz) as exc:
        _fail(str(exc))
        return
    if output:
        try:
            write_atomic(output, rendered)
        except OSError as exc:
            _fail(f"{output}: {exc.strerror or exc}")
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
    from .files import write_atomic
    from .schema import profile_schema, render, write_vscode

    if workspace is not None:
        try:
            written = write_vscode(Path(workspace))
        except (OSError, ValueError) as exc:
            _fail(str(exc))
        for path in written:
            click.echo(f"wrote {path}")
        return
    text = render(profile_schema() if of_profile else None)
    if output:
        try:
            write_atomic(output, text)
        except OSError as exc:
            _fail(f"{output}: {exc.strerror or exc}")
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
    if spec_path.exists() and not force:
        _fail(f"{spec_path} exists; pass --force to overwrite it")
    try:
        text = starter(name or app_name(target.resolve().name), region, account)
        write_atomic(target / SCHEMA_FILE, render())
        write_atomic(spec_path, text)
    except (OSError, ValueError) as exc:
        _fail(str(exc))
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


def _deploy_options(fn: Any) -> Any:
    for option in reversed([
        click.option("-f", "--file", "spec_file", default="flowbuilder.yaml", show_default=True,
                     type=click.Path(dir_okay=False), help="The spec."),
        click.option("--profile", default="standard", show_default=True, metavar="standard|ultra|PATH",
                     help="How the spec becomes AWS resources."),
        click.option("--env", "environment", default="dev", show_default=True, metavar="NAME",
                     help="Environment; the stack is <app>-<env> unless --stack-name."),
        click.option("--stack-name", help="CloudFormation stack name (default <app>-<env>)."),
        click.option("--param", "params", multiple=True, metavar="NAME=VALUE",
                     help="A template parameter (repeatable), e.g. VpcId=vpc-0abc."),
        click.option("--image", "images", multiple=True, metavar="SERVICE=URI",
                     help="Image of a service (repeatable); 'runtime' for the runtime roles."),
        click.option("--bucket", help="S3 bucket for templates over 51,200 bytes (default: fbc bootstrap's)."),
    ]):
        fn = option(fn)
    return fn


def _target(spec_file: str, profile: str, environment: str, stack_name: str | None) -> Any:
    from .build import compile_spec
    from .deploy.operations import Target

    compiled = compile_spec(spec_file, profile, environment)
    return Target(compiled, stack_name or compiled.plan.stack_name)


def _deploying(action: Callable[[], int], *, error_code: int = EXIT_INVALID) -> None:
    """Run a deploy verb: located spec errors print as in validate; AWS problems are one line, exit
    `error_code` (diff uses 2, so that 1 keeps meaning "differences", as kubectl diff)."""
    from botocore.exceptions import BotoCoreError, ClientError
    from botocore.parsers import ResponseParserError

    from .deploy.aws import DeployError
    from .diagnostics import Invalid, format_text
    from .emit import LimitError

    try:
        code = action()
    except Invalid as exc:
        click.echo(format_text(exc.diagnostics), err=error_code != EXIT_INVALID)
        sys.exit(error_code)
    except (DeployError, LimitError) as exc:
        _fail(str(exc), error_code)
        return
    except ClientError as exc:
        error = exc.response.get("Error", {})
        _fail(f"AWS: {error.get('Code')}: {error.get('Message')}", error_code)
        return
    except ResponseParserError as exc:  # the endpoint answered with something that is not AWS's format
        _fail(f"AWS endpoint error: {str(exc).splitlines()[0]}", error_code)
        return
    except (BotoCoreError, OSError, ValueError) as exc:
        _fail(str(exc).splitlines()[0], max(error_code, EXIT_USAGE))
        return
    sys.exit(code)


def _interactive() -> bool:
    return sys.stdin.isatty() and sys.stdout.isatty() and os.environ.get("CI") != "true"


@cli.command()
@_deploy_options
@click.option("--against", default="deployed", show_default=True, metavar="deployed|FILE",
              help="Compare with the deployed stack, or offline with a template file.")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
def diff(spec_file: str, profile: str, environment: str, stack_name: str | None, params: tuple[str, ...],
         images: tuple[str, ...], bucket: str | None, against: str, fmt: str) -> None:
    """Show what apply would change. Exit 0: no differences, 1: differences, 2: error (as kubectl diff)."""

    def action() -> int:
        from .deploy.aws import session
        from .deploy.diff import diff_templates, render_json, render_text, use_colour
        from .deploy.operations import diff_against_stack, image_parameters

        target = _target(spec_file, profile, environment, stack_name)
        if against == "deployed":
            given = {**_pairs(params, "--param"), **image_parameters(target.compiled, _pairs(images, "--image"))}
            result = diff_against_stack(session(target.compiled.plan.region), target, given, bucket,
                                        lambda line: click.echo(line, err=True))
        else:
            from cfnlint.decode import decode

            old, matches = decode(against)
            if old is None:
                raise ValueError(f"{against}: not a CloudFormation template ({matches[0].message if matches else ''})")
            result = diff_templates(dict(old), target.template)
        click.echo(render_json(result) if fmt == "json" else render_text(result, use_colour()))
        return 0 if result.empty else 1

    _deploying(action, error_code=EXIT_USAGE)


@cli.command()
@_deploy_options
@click.option("--yes", "-y", "assume_yes", is_flag=True, help="Do not ask; required in CI for risky changes.")
def apply(spec_file: str, profile: str, environment: str, stack_name: str | None, params: tuple[str, ...],
          images: tuple[str, ...], bucket: str | None, assume_yes: bool) -> None:
    """Build, create a change set, confirm what is risky, deploy and follow it to the end."""

    def action() -> int:
        from .deploy.aws import session
        from .deploy.operations import apply as run
        from .deploy.operations import image_parameters

        target = _target(spec_file, profile, environment, stack_name)
        given = {**_pairs(params, "--param"), **image_parameters(target.compiled, _pairs(images, "--image"))}
        return run(session(target.compiled.plan.region), target, given=given, assume_yes=assume_yes,
                   interactive=_interactive(), bucket=bucket, say=click.echo,
                   confirm=lambda q: click.confirm(q, default=False))

    _deploying(action)


def _stack_options(fn: Any) -> Any:
    """-f, --env and --stack-name: which stack a verb acts on."""
    for option in reversed([
        click.option("-f", "--file", "spec_file", default="flowbuilder.yaml", show_default=True,
                     type=click.Path(dir_okay=False), help="The spec (for the app name and region)."),
        click.option("--env", "environment", default="dev", show_default=True, metavar="NAME"),
        click.option("--stack-name", help="The stack (default <app>-<env>)."),
    ]):
        fn = option(fn)
    return fn


@cli.command()
@_stack_options
@click.option("--yes", "-y", "assume_yes", is_flag=True, help="Do not ask (CI).")
@click.option("--confirm-stack", metavar="NAME", help="prod without a terminal: the stack's name, typed.")
def destroy(spec_file: str, environment: str, stack_name: str | None, assume_yes: bool,
            confirm_stack: str | None) -> None:
    """Delete the stack (prod asks you to type its name)."""

    def action() -> int:
        from .deploy.aws import session
        from .deploy.operations import destroy as run

        name, region = _stack_of(spec_file, environment, stack_name)
        return run(session(region), name, prod=environment == "prod", assume_yes=assume_yes,
                   typed_name=confirm_stack, interactive=_interactive(), say=click.echo,
                   confirm=lambda q: click.confirm(q, default=False), prompt=lambda q: click.prompt(q))

    _deploying(action)


@cli.command()
@_stack_options
@click.option("--drift", is_flag=True, help="Also detect drift from the template (takes a while).")
@click.option("--events", default=10, show_default=True, help="How many recent events to show.")
def status(spec_file: str, environment: str, stack_name: str | None, drift: bool, events: int) -> None:
    """Stack state, outputs, last events, and drift if asked. Exit 1 when not deployed."""

    def action() -> int:
        from .deploy.aws import session
        from .deploy.operations import status as run

        name, region = _stack_of(spec_file, environment, stack_name)
        return run(session(region), name, drift=drift, events=events, say=click.echo)

    _deploying(action)


@cli.command()
@click.option("-f", "--file", "spec_file", default="flowbuilder.yaml", show_default=True,
              type=click.Path(dir_okay=False))
@click.option("--bucket", help="Bucket name (default fbc-assets-<account>-<region>).")
def bootstrap(spec_file: str, bucket: str | None) -> None:
    """Create the S3 bucket that templates over CloudFormation's inline limit are uploaded to."""

    def action() -> int:
        from .deploy.aws import session
        from .deploy.operations import bootstrap as run

        region = _region_of(spec_file)
        run(session(region), region, bucket, click.echo)
        return 0

    _deploying(action)


def _region_of(spec_file: str) -> str:
    from .diagnostics import Invalid
    from .validate import validate_file

    result = validate_file(spec_file)
    if result.app is None:
        raise Invalid(result.diagnostics)
    return result.app.spec.region


def _stack_of(spec_file: str, environment: str, stack_name: str | None) -> tuple[str, str]:
    from .validate import validate_file

    result = validate_file(spec_file)
    if result.app is None:
        from .diagnostics import Invalid

        raise Invalid(result.diagnostics)
    return stack_name or f"{result.app.metadata.name}-{environment}", result.app.spec.region


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
