"""The verbs that work on a spec on this machine: validate, build, up, cost, graph, schema, init."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from .common import EXIT_INVALID, chosen_profile, machine_readable, reported, spec_options, write_output

if TYPE_CHECKING:
    from ..build import Compiled


@click.command()
@spec_options(optional=True)
@click.option("--format", "fmt", type=click.Choice(["text", "json", "github"]), default="text",
              show_default=True, help="text for people, github for Actions annotations, json for tools.")
def validate(spec_file: str, environment: str | None, profile: str | None, fmt: str) -> None:
    """Check flowbuilder.yaml and print every problem, one line each, sorted by position."""
    from ..diagnostics import FORMATTERS, Invalid
    from ..profiles import choose_profile, resolve
    from ..validate import validate_file

    machine_readable(fmt == "json")
    with reported():
        # The spec's profile when it names one (for --env: that environment's); none: the profile-free checks.
        choice = choose_profile(spec_file, environment, profile)
        ref = None if choice.source == "default" else chosen_profile(spec_file, environment, profile)
        try:
            result = validate_file(spec_file, environment=environment,
                                   profile=resolve(ref, environment) if ref else None)
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


@click.command()
@spec_options()
@click.option("-o", "--output", "out_dir", default="build", show_default=True, type=click.Path(file_okay=False),
              help="Directory for <stack>.template.<format> and <stack>.parameters.json.")
@click.option("--format", "fmt", type=click.Choice(["json", "yaml"]), default="json", show_default=True,
              help="Template format.")
def build(spec_file: str, profile: str | None, environment: str, out_dir: str, fmt: str) -> None:
    """Compile flowbuilder.yaml into a CloudFormation template and a parameters file."""
    from ..build import compile_spec, write
    from ..diagnostics import format_text

    with reported(spec_file, "not built"):
        compiled = compile_spec(spec_file, chosen_profile(spec_file, environment, profile), environment)
        paths = write(compiled, out_dir, fmt)  # type: ignore[arg-type]
    if compiled.warnings:
        click.echo(format_text(compiled.warnings), err=True)
    click.echo(compiled.summary())
    for path in paths:
        click.echo(f"wrote {path}")
    click.echo(compiled.suppression_summary())  # the template is in a file, so this stays on stdout


@click.command()
@spec_options()
@click.option("--database-url", metavar="URL",
              help="A database for fbc up alone (default: SQLite in .flowbuilder/ beside the spec).")
@click.option("--port", default=8000, show_default=True, type=click.IntRange(0, 65535),
              help="Port of the API on 127.0.0.1 (further API services take the next ones; 0: any free port).")
@click.option("--smoke", is_flag=True,
              help="Start everything, run one sample workflow through queue and worker, print it, stop.")
def up(spec_file: str, profile: str | None, environment: str, database_url: str | None, port: int, smoke: bool) -> None:
    """Run the application on this machine: queues, database, API, workers, schedules. The profile decides
    the workers: a scaled poll pool (standard) or one process per message (ultra)."""
    import signal
    import threading

    from ..build import plan_spec
    from ..local.processes import Logs
    from ..local.up import Options
    from ..local.up import up as run_up

    with reported(spec_file, "not started"):
        plan = plan_spec(spec_file, chosen_profile(spec_file, environment, profile), environment)
        stop = threading.Event()
        for number in (signal.SIGINT, signal.SIGTERM):
            signal.signal(number, lambda *_: stop.set())
        code = run_up(plan, Options(Path(spec_file), database_url, port, smoke), Logs(), stop)
    sys.exit(code)


def _environments(_ctx: click.Context, _param: click.Parameter, value: str) -> list[str]:
    """--env a,b,...: each name by validate's rule, and once (a stack named twice would be priced twice)."""
    from .common import BadEnvironment, check_environment

    names = [n.strip() for n in value.split(",") if n.strip()]
    for name in names:
        check_environment(name)
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise BadEnvironment(f"--env {value}: {', '.join(twice)} named more than once")
    return names or ["dev"]


def _declared_environments(spec_file: str) -> list[str]:
    """The environments a spec declares (spec.environments); [] when it declares none or is not a mapping
    (compiling it says why)."""
    from .. import load

    data = load.load_file(spec_file).data
    spec = data.get("spec") if isinstance(data, dict) else None
    declared = spec.get("environments") if isinstance(spec, dict) else None
    return list(declared) if isinstance(declared, dict) else []


def _spec_environments(spec_file: str) -> list[str]:
    """The environments a spec declares (spec.environments), for --all-environments."""
    declared = _declared_environments(spec_file)
    if not declared:
        raise ValueError(f"{spec_file} declares no environments (spec.environments): name them with --env a,b")
    return declared


def _check_declared(spec_file: str, environments: list[str], profile: str | None) -> None:
    """Several environments are stacks of one account: one that neither the spec nor its profile declares
    (spec.environments, the profile's environments) is a typo (prdo), refused. One alone is allowed, as build
    and diff allow it (the spec without an environment's overrides), with a warning on stderr. A spec and
    profile that declare no environments have none to check against."""
    from ..profiles import choose_profile, resolve

    declared = _declared_environments(spec_file)
    unknown, said = [], []
    for name in environments:
        ref = choose_profile(spec_file, name, profile).ref
        of_profile = list(resolve(ref).environments)
        if (declared or of_profile) and name not in declared and name not in of_profile:
            unknown.append(name)
            said = [f"{spec_file} declares {', '.join(declared) or 'none'}",
                    *([f"the {ref} profile has {', '.join(of_profile)}"] if of_profile else [])]
    if not unknown:
        return
    if len(environments) > 1:
        raise ValueError(f"--env {','.join(environments)}: {', '.join(unknown)} not declared ({'; '.join(said)})")
    click.echo(f"fbc: warning: --env {unknown[0]} is not declared ({'; '.join(said)}): the spec is estimated "
               f"without an environment's overrides", err=True)


def _template_against(against: str, compiled: Compiled) -> tuple[dict[str, Any] | None, str]:
    """--against deployed (the stack's template on AWS, None when it is not deployed) or FILE (as fbc diff reads
    it); and what it is, for the report."""
    from .deploy_verbs import _aws, _template_file

    if against != "deployed":
        return _template_file(against), against
    stack = compiled.plan.stack_name
    cloudformation = _aws(compiled.plan.region).cloudformation
    found = cloudformation.describe(stack)
    if found is None or found.status == "REVIEW_IN_PROGRESS":
        click.echo(f"{stack}: not deployed in {compiled.plan.region}; every resource is added", err=True)
        return None, f"{stack} (not deployed)"
    return cloudformation.template(stack), f"deployed {stack}"


@click.command()
@spec_options(env=False)
@click.option("--env", "environments", default="dev", show_default=True, metavar="NAME[,NAME...]",
              callback=_environments,
              help="Environment(s); several (a,b) are estimated as stacks of one AWS account, which share its "
                   "always-free allowances.")
@click.option("--all-environments", is_flag=True, help="Every environment the spec declares, in one account.")
@click.option("--against", metavar="deployed|FILE",
              help="Next to the deployed stack's template (deployed) or a template FILE: per resource and in total.")
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
def cost(spec_file: str, profile: str | None, environments: list[str], all_environments: bool, against: str | None,
         compare: str | None, executions_per_month: int, avg_duration: str, requests_per_month: int,
         spot_discount: float | None, prices_region: str | None, fmt: str) -> None:
    """Estimate what a deployment costs a month: idle and usage, at list price and after AWS's free tier."""
    import json

    from ..build import compile_spec
    from ..cost import delta_report, report
    from ..cost.delta import cost_delta
    from ..cost.estimate import apply_allowances, estimate
    from ..cost.prices import Prices, price_book
    from ..cost.usage import Usage
    from ..scalars import parse_duration

    machine_readable(fmt == "json")
    with reported(spec_file, "not estimated"):
        try:
            duration = float(parse_duration(avg_duration))
        except ValueError as exc:
            raise ValueError(f"--avg-duration {avg_duration!r}: {exc}") from None
        if all_environments:
            environments = _spec_environments(spec_file)
        else:
            _check_declared(spec_file, environments, profile)
        several = [name for name, given in (("--compare", compare), ("several environments", len(environments) > 1))
                   if given]
        if len(several) + bool(against) > 1:
            raise ValueError(f"{' and '.join([*several, *(['--against'] if against else [])])} do not go together: "
                             f"estimate one at a time")
        book = price_book()
        usage = Usage(executions_per_month, duration, requests_per_month,
                      book.fargate_spot_discount if spot_discount is None else spot_discount)
        if against:
            compiled = compile_spec(spec_file, chosen_profile(spec_file, environments[0], profile), environments[0])
            before, name = _template_against(against, compiled)
            delta = cost_delta(before, json.loads(compiled.built.body),
                               Prices(book, prices_region or compiled.plan.region), usage)
            shown = delta_report.json_text(delta, name) if fmt == "json" else delta_report.text(delta, name)
        elif compare:
            estimates = []
            for chosen in (p.strip() for p in compare.split(",") if p.strip()):
                compiled = compile_spec(spec_file, chosen, environments[0])
                estimates.append(estimate(compiled, Prices(book, prices_region or compiled.plan.region), usage))
            shown = report.json_text(estimates) if fmt == "json" else report.comparison(estimates)
        else:
            estimates = []
            for env in environments:
                compiled = compile_spec(spec_file, chosen_profile(spec_file, env, profile), env)
                estimates.append(estimate(compiled, Prices(book, prices_region or compiled.plan.region), usage,
                                          allowances=False))
            apply_allowances(estimates)  # one account's, whatever the number of stacks
            if len(estimates) == 1:
                shown = report.json_text(estimates) if fmt == "json" else report.text(estimates[0])
            else:
                shown = report.shared_json(estimates) if fmt == "json" else report.shared_text(estimates)
    click.echo(shown)


@click.command()
@spec_options()
@click.option("--format", "fmt", type=click.Choice(["mermaid", "dot", "svg"]), default="mermaid", show_default=True,
              help="mermaid renders in GitHub Markdown; svg runs Graphviz's dot.")
@click.option("-o", "--output", type=click.Path(dir_okay=False), help="Write to a file instead of stdout.")
def graph(spec_file: str, profile: str | None, environment: str, fmt: str, output: str | None) -> None:
    """Draw the compiled architecture: clients, ingress, services, queues, pipes, schedules, database."""
    from ..build import compile_spec
    from ..diagram.model import build as build_diagram
    from ..diagram.render import RENDERERS

    with reported(spec_file, "not drawn"):
        compiled = compile_spec(spec_file, chosen_profile(spec_file, environment, profile), environment)
        rendered = RENDERERS[fmt](build_diagram(compiled))
        if output:
            write_output(output, rendered)
    if output:
        click.echo(f"wrote {output}", err=True)
    else:
        click.echo(rendered, nl=False)


@click.command()
@click.option("-o", "--output", type=click.Path(dir_okay=False), help="Write the schema to a file.")
@click.option("--profile", "of_profile", is_flag=True, help="The schema of profile files (kind: Profile) instead.")
@click.option("--vscode", "workspace", type=click.Path(file_okay=False), is_flag=False, flag_value=".",
              help="Write flowbuilder.schema.json and the yaml.schemas mapping in .vscode/settings.json "
                   "into a workspace (default: the current directory).")
def schema(output: str | None, of_profile: bool, workspace: str | None) -> None:
    """Print the JSON Schema of flowbuilder.yaml (for editors and tools)."""
    from ..schema import profile_schema, render, write_vscode

    with reported():
        if workspace is not None:
            for path in write_vscode(Path(workspace)):
                click.echo(f"wrote {path}")
            return
        text = render(profile_schema() if of_profile else None)
        if output:
            write_output(output, text)
            click.echo(f"wrote {output}")
            return
    click.echo(text, nl=False)


@click.command()
@click.option("--name", help="Application name (default: the directory's name, made DNS-safe).")
@click.option("--region", default="us-east-1", show_default=True, help="AWS region.")
@click.option("--account", default="123456789012", show_default=True, help="AWS account of the ECR images.")
@click.option("--force", is_flag=True, help="Overwrite an existing flowbuilder.yaml.")
@click.argument("directory", default=".", type=click.Path(file_okay=False))
def init(name: str | None, region: str, account: str, force: bool, directory: str) -> None:
    """Write a starter flowbuilder.yaml (with its schema, for editor completion) into DIRECTORY."""
    from ..files import write_atomic
    from ..schema import SCHEMA_FILE, render
    from ..starter import app_name, starter

    target = Path(directory)
    spec_path = target / "flowbuilder.yaml"
    with reported():
        if spec_path.exists() and not force:
            raise FileExistsError(f"{spec_path} exists; pass --force to overwrite it")
        text = starter(name or app_name(target.resolve().name), region, account)
        write_atomic(target / SCHEMA_FILE, render())
        write_atomic(spec_path, text)
    click.echo(f"wrote {spec_path} and {target / SCHEMA_FILE}; next: fbc validate -f {spec_path}")
