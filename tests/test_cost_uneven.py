"""fbc cost --against and fbc diff --cost on templates that do not match the new build's record: a template
built before the record (no Metadata), a deployed template edited by hand (a resource its record does not name,
a property fbc cannot read), and resources that can be priced on one side only. A resource nobody changed
costs the same on both sides; what cannot be priced on one side is left out of the delta and said in a warning.
Also: --env lists (duplicates, undeclared names), the rounding statement, the KMS rotation line."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from conftest import REPO, run_fbc
from flowbuilder.compiler.build import compile_spec
from flowbuilder.compiler.cost.delta import ROUNDING, cost_delta
from flowbuilder.compiler.cost.estimate import UNNAMED, estimate, estimate_template
from flowbuilder.compiler.cost.prices import Prices, price_book
from flowbuilder.compiler.cost.usage import Usage

SPEC = REPO / "flowbuilder.yaml"  # declares dev and prod
PRICES = Prices(price_book(), "us-east-1")


def template(profile: str, env: str) -> dict[str, Any]:
    return dict(json.loads(compile_spec(SPEC, profile, env).built.body))


def without_record(built: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in built.items() if k != "Metadata"}


def write(path: Path, body: dict[str, Any]) -> str:
    path.write_text(json.dumps(body))
    return str(path)


# -- 1. a template built before the record ------------------------------------------------------------------

@pytest.mark.parametrize(("profile", "env"), [("ultra", "dev"), ("standard", "prod")])
def test_the_same_template_without_its_record_changes_nothing_and_costs_nothing(profile: str, env: str) -> None:
    new = template(profile, env)
    delta = cost_delta(without_record(new), new, PRICES, Usage())
    assert delta.delta == 0 and delta.before_total == delta.after_total > 0
    assert delta.before_list == delta.after_list and delta.before_idle == delta.after_idle
    assert {line.change for line in delta.lines} == {"unchanged"}
    assert all(line.delta == 0 and line.priced_before == line.priced_after for line in delta.lines)
    assert delta.before_estimate is not None
    assert delta.before_estimate.lines == delta.after_estimate.lines  # type: ignore[union-attr]
    assert any("carries no fbc record" in w for w in delta.warnings)


def test_the_diff_comment_of_a_stack_built_before_the_record_shows_no_cost(tmp_path: Path) -> None:
    old = write(tmp_path / "norecord.json", without_record(template("ultra", "dev")))
    shown = run_fbc("diff", "-f", str(SPEC), "--env", "dev", "--profile", "ultra", "--against", old, "--cost",
                    "--format", "markdown", "--prices-region", "us-east-1")
    assert shown.exit_code == 0, shown.output
    assert "**No changes** · cost +\\$0.00/month" in shown.stdout
    assert "unpriced before" not in shown.stdout
    data = json.loads(run_fbc("cost", "-f", str(SPEC), "--env", "dev", "--profile", "ultra", "--against", old,
                              "--format", "json").stdout)
    assert data["totals"]["afterAllowances"]["delta"] == 0 and data["totals"]["list"]["delta"] == 0
    assert all(line["pricedBefore"] and line["delta"] == 0 for line in data["lines"]
               if line["type"] == "AWS::ECS::Service")


def test_a_changed_resource_of_an_unrecorded_template_is_priced_from_its_own_properties() -> None:
    # The old template without its record and with a bigger worker task (1 vCPU): the borrowed record says what
    # the service serves, the old properties say how big it was, so the delta is the real one.
    new = template("standard", "prod")
    old = without_record(new)
    old["Resources"] = dict(old["Resources"])
    old["Resources"]["WorkerTaskDefinition"] = json.loads(json.dumps(new["Resources"]["WorkerTaskDefinition"]))
    old["Resources"]["WorkerTaskDefinition"]["Properties"]["Cpu"] = "1024"
    delta = cost_delta(old, new, PRICES, Usage())
    recorded = cost_delta(dict(old, Metadata=new["Metadata"]), new, PRICES, Usage())
    assert delta.delta == pytest.approx(recorded.delta) and delta.delta < -0.1  # 0.5 vCPU less, while busy
    worker = next(line for line in delta.lines if line.logical_id == "WorkerService")
    assert worker.priced_before and worker.change == "changed" and worker.delta < 0


def test_a_resource_priced_on_one_side_only_is_left_out_of_the_delta_with_a_warning() -> None:
    new = template("standard", "prod")
    old = json.loads(json.dumps(without_record(new)))
    old["Resources"]["ApiTaskDefinition"]["Properties"]["Cpu"] = {"Ref": "ApiCpu"}  # old: not readable
    delta = cost_delta(old, new, PRICES, Usage())
    api = next(line for line in delta.lines if line.logical_id == "ApiService")
    assert (api.priced_before, api.priced_after) == (False, True)
    assert api.before == api.after and (api.after or 0) > 0 and api.delta == 0  # the new figure on both sides
    assert delta.delta == pytest.approx(0, abs=1e-9)
    assert any("could not be priced in the old template" in w and "ApiService" in w for w in delta.warnings)
    assert any(n.startswith("ApiService (AWS::ECS::Service, before): its properties are not ones fbc reads")
               for n in delta.not_priced)

    # The other way: priced before only (the new distribution's price class is not priced): its old figure is
    # not counted either.
    ultra = template("ultra", "prod")
    changed = json.loads(json.dumps(ultra))
    cdn = next(r for r, v in changed["Resources"].items() if v["Type"] == "AWS::CloudFront::Distribution")
    changed["Resources"][cdn]["Properties"]["DistributionConfig"]["PriceClass"] = "PriceClass_All"
    dropped = cost_delta(ultra, changed, PRICES, Usage())
    line = next(line for line in dropped.lines if line.logical_id == cdn)
    assert (line.priced_before, line.priced_after, line.delta) == (False, False, 0)
    assert dropped.before_list == pytest.approx(dropped.after_list)
    assert any("could not be priced in the new template" in w and cdn in w for w in dropped.warnings)


# -- 2. a record that does not name a resource ---------------------------------------------------------------

def hand_edited(extra: dict[str, Any]) -> dict[str, Any]:
    body = template("ultra", "dev")
    body["Resources"] = {**body["Resources"], **extra}
    return body


def test_a_resource_the_record_does_not_name_is_priced_by_type_or_listed_never_a_traceback(tmp_path: Path) -> None:
    body = hand_edited({"HandAddedQueue": {"Type": "AWS::SQS::Queue"},
                        "HandAddedEip": {"Type": "AWS::EC2::EIP", "Properties": {"Domain": "vpc"}}})
    found = estimate_template(body, PRICES, Usage())
    assert any(n.resource == "HandAddedQueue" and n.reason == UNNAMED for n in found.not_priced)
    assert [(line.meter, round(line.cost, 6)) for line in found.lines if line.resource == "HandAddedEip"] == [
        ("public-ipv4-hour", 3.65)]  # by type: $0.005 x 730 hours

    hand = write(tmp_path / "hand.json", body)
    shown = run_fbc("cost", "-f", str(SPEC), "--env", "dev", "--profile", "ultra", "--against", hand,
                    "--format", "json")
    assert shown.exit_code == 0, shown.output
    data = json.loads(shown.stdout)
    lines = {line["resource"]: line for line in data["lines"]}
    assert lines["HandAddedQueue"]["change"] == "removed" and not lines["HandAddedQueue"]["pricedBefore"]
    assert lines["HandAddedEip"]["delta"] == pytest.approx(-3.65)  # removing it saves its address
    assert any(n.startswith("HandAddedQueue (AWS::SQS::Queue, before): ") and "does not name it" in n
               for n in data["notPriced"])
    assert any("HandAddedQueue" in w for w in data["warnings"])

    diffed = run_fbc("diff", "-f", str(SPEC), "--env", "dev", "--profile", "ultra", "--against", hand, "--cost",
                     "--format", "markdown", "--prices-region", "us-east-1")
    assert diffed.exit_code == 1, diffed.output  # changes: the two removals, and no internal error
    assert "HandAddedQueue" in diffed.stdout and "cost -\\$3.65/month" in diffed.stdout


def test_a_hand_edited_property_of_a_recorded_template_is_listed_as_not_priced() -> None:
    body = template("ultra", "dev")
    pipe = next(r for r, v in body["Resources"].items() if v["Type"] == "AWS::Pipes::Pipe")
    body["Resources"][pipe]["Properties"]["TargetParameters"] = "edited by hand"
    found = estimate_template(body, PRICES, Usage())
    assert any(n.resource == pipe and "not ones fbc reads" in n.reason for n in found.not_priced)
    with pytest.raises(TypeError):  # a build's own template stays strict: a pricer's bug is raised
        estimate_template(body, PRICES, Usage(), *_record_of("ultra", "dev"))


def _record_of(profile: str, env: str) -> tuple[Any, Any]:
    from flowbuilder.compiler.emit import record

    compiled = compile_spec(SPEC, profile, env)
    return compiled.manifest, record.facts(compiled.plan)


# -- 3. --env lists ------------------------------------------------------------------------------------------

def test_an_environment_named_twice_is_a_usage_error() -> None:
    refused = run_fbc("cost", "-f", str(SPEC), "--env", "dev,dev")
    assert refused.exit_code == 2 and refused.stdout == ""
    assert refused.stderr.strip() == "fbc: --env dev,dev: dev named more than once"


def test_several_environments_must_be_declared_and_one_alone_is_warned_about() -> None:
    refused = run_fbc("cost", "-f", str(SPEC), "--env", "dev,prdo")
    assert refused.exit_code == 2 and refused.stdout == ""
    assert refused.stderr.strip() == (f"fbc: --env dev,prdo: prdo not declared ({SPEC} declares dev, prod; "
                                      f"the standard profile has dev, prod, staging)")
    # staging: the standard profile's environment, as build allows it
    assert run_fbc("cost", "-f", str(SPEC), "--env", "dev,staging").exit_code == 0
    alone = run_fbc("cost", "-f", str(SPEC), "--env", "prdo")  # as build and diff allow it, with a warning
    assert alone.exit_code == 0 and alone.stdout.startswith("flow-builder-prdo: ")
    assert alone.stderr.startswith("fbc: warning: --env prdo is not declared")
    assert run_fbc("cost", "-f", str(SPEC), "--env", "prod").stderr == ""


# -- 4. rounding ---------------------------------------------------------------------------------------------

def test_every_delta_says_its_totals_are_computed_before_rounding(tmp_path: Path) -> None:
    delta = cost_delta(template("standard", "dev"), template("standard", "prod"), PRICES, Usage())
    assert delta.rounding == ROUNDING and "totals are computed before rounding" in ROUNDING
    old = write(tmp_path / "dev.json", template("standard", "dev"))
    text = run_fbc("cost", "-f", str(SPEC), "--env", "prod", "--against", old).stdout
    assert f"  ({ROUNDING})" in text
    data = json.loads(run_fbc("cost", "-f", str(SPEC), "--env", "prod", "--against", old, "--format", "json").stdout)
    assert data["rounding"] == ROUNDING


# -- 5. KMS rotation -----------------------------------------------------------------------------------------

def test_the_kms_rotation_line_says_the_steady_state_starts_at_the_second_rotation() -> None:
    result = estimate(compile_spec(SPEC, "standard", "prod"), PRICES, Usage())
    rotation = next(line for line in result.lines if line.meter == "kms-key-rotation-month")
    assert rotation.cost == 2.0  # the steady state: two rotated versions at $1
    assert rotation.what == "rotation from the 2nd (day 730); $0 to day 365, then $1"
    assert len(rotation.what) <= 58  # the report's column
    assert rotation.what in run_fbc("cost", "-f", str(SPEC), "--env", "prod").stdout
