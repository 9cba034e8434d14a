"""fbc cost --against: the new template's monthly cost next to another template's (a FILE, or the deployed stack's
on moto's server over HTTP), with figures checked by hand at the committed prices (compiler/cost/prices.yaml,
us-east-1: NAT gateway $0.045/hour, public IPv4 $0.005/hour, Fargate $0.04048/vCPU-hour and $0.004445/GB-hour
on x86, Spot 70% below on-demand, 730 hours a month)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from deploy_fakes import spec_with
from test_deploy import MINIMAL, NETWORK, clean_moto, invoke

from conftest import REPO, run_fbc
from flowbuilder.compiler.build import compile_spec
from flowbuilder.compiler.cost.delta import cost_delta
from flowbuilder.compiler.cost.estimate import UNRECORDED, estimate, estimate_template
from flowbuilder.compiler.cost.prices import Prices, price_book
from flowbuilder.compiler.cost.usage import Usage

SPEC = REPO / "flowbuilder.yaml"
PRICES = Prices(price_book(), "us-east-1")


def template(profile: str, env: str, spec: Path = SPEC) -> dict[str, Any]:
    return dict(json.loads(compile_spec(spec, profile, env).built.body))


def two_nat_profile(tmp_path: Path) -> str:
    """standard, with staging's single NAT gateway made one per zone (2 zones)."""
    path = tmp_path / "twonat.yaml"
    path.write_text("apiVersion: flowbuilder.dev/v1alpha1\nkind: Profile\nmetadata: {name: twonat}\n"
                    "extends: standard\nspec: {}\nenvironments:\n  staging:\n    network: {nat: gateway-per-az}\n")
    return str(path)


def test_a_second_nat_gateway_adds_its_hours_and_its_public_address(tmp_path: Path) -> None:
    before = tmp_path / "staging.json"
    before.write_text(json.dumps(template("standard", "staging")))
    shown = run_fbc("cost", "-f", str(SPEC), "--env", "staging", "--profile", two_nat_profile(tmp_path),
                    "--against", str(before), "--format", "json")
    assert shown.exit_code == 0, shown.output
    data = json.loads(shown.output)
    added = {line["resource"]: line for line in data["lines"] if line["change"] == "added"}
    # $0.045 x 730 hours = $32.85 for the gateway; its Elastic IP $0.005 x 730 = $3.65
    assert {k: (v["before"], v["after"], v["delta"]) for k, v in added.items()} == {
        "NatGateway2": (None, 32.85, 32.85), "NatGateway2Eip": (None, 3.65, 3.65)}
    assert data["totals"]["afterAllowances"]["delta"] == 36.50
    assert data["totals"]["list"]["delta"] == 36.50
    assert data["totals"]["idle"]["after"] - data["totals"]["idle"]["before"] == pytest.approx(36.50, abs=0.01)
    assert not [line for line in data["lines"] if line["change"] == "removed"]
    # The other resources changed only their profile tag: listed as changed at the same cost.
    changed = [line for line in data["lines"] if line["change"] == "changed"]
    assert changed and all(line["delta"] == pytest.approx(0) for line in changed)
    text = run_fbc("cost", "-f", str(SPEC), "--env", "staging", "--profile", two_nat_profile(tmp_path),
                   "--against", str(before)).output
    assert "TOTAL per month after allowances: $107.58 -> $144.08 (+$36.50)" in text
    assert "NatGateway2                        AWS::EC2::NatGateway" in text


def test_lines_are_ordered_by_the_size_of_their_delta_then_logical_id() -> None:
    delta = cost_delta(template("standard", "staging"), template("standard", "prod"), PRICES, Usage())
    keys = [(-round(abs(line.delta), 9), line.logical_id) for line in delta.lines]
    assert keys == sorted(keys)
    assert delta.lines[0].logical_id == "Database" and delta.lines[0].change == "changed"
    assert delta.delta == pytest.approx(sum(line.delta for line in delta.lines))
    assert delta.after_list >= delta.after_total


def test_nothing_before_is_every_resource_added_and_the_same_template_changes_nothing() -> None:
    after = template("ultra", "prod")
    fresh = cost_delta(None, after, PRICES, Usage())
    assert {line.change for line in fresh.lines} == {"added"} and fresh.before_total == 0
    assert fresh.after_total == pytest.approx(estimate(compile_spec(SPEC, "ultra", "prod"), PRICES, Usage()).total(
        after=True))
    same = cost_delta(after, after, PRICES, Usage())
    assert {line.change for line in same.lines} == {"unchanged"} and same.delta == 0
    assert any("always-free allowances are per account" in a for a in same.assumptions)
    assert any("at 50%" in a and "at 70%" in a for a in same.assumptions)  # ultra's Pipe tasks run on Spot


@pytest.mark.parametrize("spec", ["flowbuilder.yaml", "tests/specs/full.yaml", "tests/specs/private-api.yaml"])
@pytest.mark.parametrize("profile", ["standard", "ultra"])
def test_a_template_alone_is_priced_as_its_build_from_the_record_in_its_metadata(spec: str, profile: str) -> None:
    compiled = compile_spec(REPO / spec, profile, "prod")
    alone = estimate_template(json.loads(compiled.built.body), PRICES, Usage())
    built = estimate(compiled, PRICES, Usage())
    assert alone.lines == built.lines and alone.not_priced == built.not_priced


def test_a_template_without_the_record_is_priced_by_type_where_it_can_and_says_the_rest(tmp_path: Path) -> None:
    old = template("standard", "staging")
    del old["Metadata"]
    found = estimate_template(old, PRICES, Usage())
    assert {line.resource for line in found.lines} >= {"NatGateway1", "NatGateway1Eip", "Database", "AlertKey"}
    unrecorded = {n.resource for n in found.not_priced if n.reason == UNRECORDED}
    assert {"ApiService", "LoadBalancer", "WorkflowRequestsQueue", "SchedulerFunction"} <= unrecorded
    # Next to the new build, the old template borrows the new record for the same logical IDs and types: the
    # service is priced on both sides, the same.
    delta = cost_delta(old, template("standard", "staging"), PRICES, Usage())
    service = next(line for line in delta.lines if line.logical_id == "ApiService")
    assert (service.priced_before, service.priced_after) == (True, True) and service.delta == 0
    assert any("carries no fbc record" in w and "priced with the new build's record" in w for w in delta.warnings)


@pytest.mark.parametrize(("content", "message"), [
    (None, "No such file or directory"),
    ('{"Resources": ', "not JSON or YAML"),
    ("[]", "not a CloudFormation template"),
])
def test_a_missing_or_malformed_file_is_one_line_and_exit_2(tmp_path: Path, content: str | None,
                                                              message: str) -> None:
    path = tmp_path / "before.json"
    if content is not None:
        path.write_text(content)
    refused = run_fbc("cost", "-f", str(SPEC), "--against", str(path))
    assert refused.exit_code == 2 and refused.stdout == ""
    assert refused.stderr.startswith(f"fbc: --against {path}: ") and message in refused.stderr
    assert len(refused.stderr.strip().splitlines()) == 1


def test_against_goes_with_one_environment_and_no_compare() -> None:
    refused = run_fbc("cost", "-f", str(SPEC), "--env", "dev,prod", "--against", "deployed")
    assert refused.exit_code == 2
    assert refused.stderr.strip() == ("fbc: several environments and --against do not go together: estimate one "
                                      "at a time")


def test_against_the_deployed_stack_on_moto(moto_server: str, tmp_path: Path) -> None:
    env = clean_moto(moto_server, tmp_path)
    spec = ["-f", str(MINIMAL), "--profile", "ultra", "--prices-region", "us-east-1"]
    fresh = invoke(env, "cost", *spec, "--against", "deployed", "--format", "json")
    assert fresh.exit_code == 0, fresh.output
    assert "tiny-dev: not deployed in eu-west-1; every resource is added" in fresh.stderr
    data = json.loads(fresh.stdout)
    assert {line["change"] for line in data["lines"]} == {"added"} and data["totals"]["list"]["before"] == 0

    created = invoke(env, "apply", "-f", str(MINIMAL), "--profile", "ultra", *NETWORK, "--yes")
    assert created.exit_code == 0, created.output
    same = invoke(env, "cost", *spec, "--against", "deployed")
    assert same.exit_code == 0, same.output
    assert "against deployed tiny-dev" in same.stdout
    assert "(no resource added or removed, and no cost changed)" in same.stdout
    assert "(+$0.00)" in same.stdout

    # The worker goes from 0.25 vCPU and 0.5 GB to 0.5 vCPU and 1 GB. Each of 10,000 messages starts a task
    # billed 60 s (30 s of work + 30 s start-up): 166.67 task-hours on Fargate Spot at 30% of on-demand.
    # vCPU: +0.25 x 166.67 x $0.04048 x 0.3 = +$0.506; memory: +0.5 x 166.67 x $0.004445 x 0.3 = +$0.111125
    bigger = spec_with(tmp_path, MINIMAL, "timeout: 5m}", "timeout: 5m, cpu: 512, memory: 1024}")
    changed = invoke(env, "cost", "-f", str(bigger), "--profile", "ultra", "--prices-region", "us-east-1",
                     "--against", "deployed", "--format", "json")
    assert changed.exit_code == 0, changed.output
    data = json.loads(changed.stdout)
    moved = {line["resource"]: line["delta"] for line in data["lines"] if abs(line["delta"]) > 1e-9}
    assert moved == {"WorkerPipe": pytest.approx(0.506 + 0.111125)}
    assert data["totals"]["afterAllowances"]["delta"] == 0.62
    task = next(line for line in data["lines"] if line["resource"] == "WorkerTaskDefinition")
    assert task["change"] == "changed" and task["delta"] == 0
