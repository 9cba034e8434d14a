"""The build's manifest (compiler/emit/manifest.py): every resource recorded once, with the plan node it serves
and its role; logical IDs made by naming.py only; cost's pricers and the graph's drawn types checked against
what the compiler emits; and cost and graph read the manifest, so renaming every logical ID changes neither."""

from __future__ import annotations

import ast
import dataclasses
import itertools
import json
import re
from pathlib import Path
from typing import Any, get_args

import pytest

from build_helpers import MATRIX, SPECS, compiled
from conftest import REPO
from flowbuilder.compiler import naming
from flowbuilder.compiler.build import Compiled, compile_spec
from flowbuilder.compiler.cost.estimate import FREE, PRICERS, VOLUME, estimate
from flowbuilder.compiler.cost.prices import Prices, price_book
from flowbuilder.compiler.cost.usage import Usage
from flowbuilder.compiler.diagnostics import Invalid
from flowbuilder.compiler.diagram.model import DRAWN, NOT_DRAWN, Diagram, build
from flowbuilder.compiler.emit import Built
from flowbuilder.compiler.emit.manifest import Manifest

# Every core combination of profile settings (tests/test_aws_rules.py builds the same), so each branch of
# every generator is reached, not only the two built-in profiles'.
CORE = {
    "vpc": ("new", "existing"), "nat": ("gateway-per-az", "single-gateway", "instance", "none"),
    "azCount": (1, 2, 3), "mode": ("rds", "external"), "serving": ("load-balancer", "function-url"),
    "dispatch": ("autoscaled-service", "pipe"),
}


def _combinations(directory: Path) -> list[tuple[str, Compiled]]:
    built = []
    for n, values in enumerate(itertools.product(*CORE.values())):
        s = dict(zip(CORE, values, strict=True))
        profile = directory / f"combination-{n}.yaml"
        profile.write_text(json.dumps({
            "apiVersion": "flowbuilder.dev/v1alpha1", "kind": "Profile", "metadata": {"name": f"combination-{n}"},
            "spec": {"network": {"vpc": s["vpc"], "nat": s["nat"], "azCount": s["azCount"]},
                     "database": {"mode": s["mode"]}, "web": {"serving": s["serving"]},
                     "workers": {"dispatch": s["dispatch"]}}}), "utf-8")
        for env in ("dev", "prod"):
            try:
                built.append((f"full {s} {env}", compile_spec(SPECS["full"], str(profile), env)))
            except Invalid:
                continue  # a combination AWS cannot run, refused where it is written (test_aws_rules)
    return built


@pytest.fixture(scope="module")
def builds(tmp_path_factory: pytest.TempPathFactory) -> list[tuple[str, Compiled]]:
    matrix = [("-".join(m), compiled(*m)) for m in MATRIX]
    return matrix + _combinations(tmp_path_factory.mktemp("profiles"))


def test_every_resource_has_one_entry_and_every_entry_a_resource(builds: list[tuple[str, Compiled]]) -> None:
    assert len(builds) > 100
    for label, build_ in builds:
        resources = json.loads(build_.built.body)["Resources"]
        entries = [e.logical_id for e in build_.manifest]
        assert len(entries) == len(set(entries)), label
        assert set(entries) == set(resources), (label, set(entries) ^ set(resources))
        assert all(resources[e.logical_id]["Type"] == e.type for e in build_.manifest), label


def test_entries_serve_plan_nodes_and_their_ids_come_from_naming(builds: list[tuple[str, Compiled]]) -> None:
    scheduler = {naming.scheduler_id(s) for s in get_args(naming.SchedulerSuffix)} | {"SweeperSchedule"}
    for label, build_ in builds:
        plan = build_.plan
        names = {"service": {s.name for s in plan.services}, "queue": {q.name for q in plan.queues},
                 "schedule": {s.name for s in plan.schedules}}
        for entry in build_.manifest:
            kind, name = entry.node
            if kind in names:
                assert name in names[kind], (label, entry)
                assert entry.logical_id in naming.logical_ids(f"{kind}s", name or ""), (label, entry)
            elif kind == "scheduler":
                assert entry.logical_id in scheduler, (label, entry)
            else:
                assert entry.logical_id in naming.GLOBAL_IDS - scheduler, (label, entry)


def test_cost_prices_and_the_graph_draws_exactly_the_emitted_types(builds: list[tuple[str, Compiled]]) -> None:
    emitted = {e.type for _, build_ in builds for e in build_.manifest}
    priced = [set(PRICERS), set(VOLUME), FREE]
    assert all(not a & b for a, b in itertools.combinations(priced, 2)), "a type priced twice"
    assert emitted - set().union(*priced) == set(), "emitted but neither priced nor listed in VOLUME or FREE"
    assert set().union(*priced) - emitted == set(), "priced or listed, but never emitted"
    assert not DRAWN & NOT_DRAWN
    assert emitted - DRAWN - NOT_DRAWN == set(), "emitted but neither drawn nor listed in NOT_DRAWN"
    assert (DRAWN | NOT_DRAWN) - emitted == set(), "drawn or listed, but never emitted"


def _renamed(original: Compiled, prefix: str) -> tuple[Compiled, dict[str, str]]:
    """The same build with every logical ID prefixed, everywhere the template names it, and in the manifest."""
    new = {e.logical_id: prefix + e.logical_id for e in original.manifest}

    def walk(value: Any) -> Any:
        if isinstance(value, list):
            return [walk(item) for item in value]
        if isinstance(value, str):  # Fn::Sub's ${Id} and ${Id.Attribute}
            return re.sub(r"\$\{(\w+)", lambda m: "${" + new.get(m.group(1), m.group(1)), value)
        if not isinstance(value, dict):
            return value
        out = {}
        for key, item in value.items():
            if key == "Ref" or (key == "DependsOn" and isinstance(item, str)):
                out[key] = new.get(item, item)
            elif key == "DependsOn":
                out[key] = [new.get(i, i) for i in item]
            elif key == "Fn::GetAtt":
                out[key] = [new.get(item[0], item[0]), *item[1:]]
            else:
                out[key] = walk(item)
        return out

    doc = json.loads(original.built.body)
    doc["Resources"] = {new[rid]: walk(resource) for rid, resource in doc["Resources"].items()}
    doc["Outputs"] = walk(doc.get("Outputs", {}))
    body = json.dumps(doc, indent=1, sort_keys=True) + "\n"
    manifest = Manifest(tuple(dataclasses.replace(e, logical_id=new[e.logical_id]) for e in original.manifest))
    renamed = dataclasses.replace(original, built=Built(original.built.template, body, manifest))
    assert renamed.built.body != original.built.body
    return renamed, {v: k for k, v in new.items()}


def _priced(build_: Compiled, back: dict[str, str]) -> list[tuple[Any, ...]]:
    result = estimate(build_, Prices(price_book(), "us-east-1"), Usage())
    return [(back.get(line.resource, line.resource), line.kind, line.what, line.meter, line.quantity, line.rate,
             line.free) for line in result.lines] + [
        (back.get(n.resource, n.resource), n.type, n.reason) for n in result.not_priced] + [
        tuple(sorted(result.free_resources.items()))]


def _drawn(d: Diagram, back: dict[str, str]) -> list[tuple[Any, ...]]:
    return [(back.get(n.id, n.id), n.label, n.detail, n.shape, n.group) for n in d.nodes] + [
        (back.get(e.source, e.source), back.get(e.target, e.target), e.label) for e in d.edges] + [
        (g.id, g.label, g.parent) for g in d.groups]


def test_renaming_every_logical_id_changes_no_price_and_no_drawing(builds: list[tuple[str, Compiled]]) -> None:
    for label, original in builds[:len(MATRIX)] + builds[len(MATRIX)::7]:
        renamed, back = _renamed(original, "Renamed")
        assert _priced(renamed, back) == _priced(original, {}), label
        assert _drawn(build(renamed), back) == _drawn(build(original), {}), label


# Per-entry logical IDs are made by naming.py's functions only: no f-string elsewhere puts a suffix after a value.
SUFFIXES = {*get_args(naming.ServiceSuffix), *get_args(naming.QueueSuffix), *get_args(naming.ScheduleSuffix),
            *get_args(naming.SchedulerSuffix)}
KNOWN: set[tuple[str, str]] = set()


def test_no_logical_id_is_made_outside_naming() -> None:
    suffix = re.compile("(" + "|".join(sorted(SUFFIXES, key=len, reverse=True)) + ")(?![a-z])")
    found = set()
    for path in sorted([*(REPO / "compiler").rglob("*.py"), *(REPO / "tests").glob("*.py"),
                        *(REPO / "bench").glob("*.py")]):
        if path == REPO / "compiler" / "naming.py":
            continue
        for node in ast.walk(ast.parse(path.read_text("utf-8"))):
            if not isinstance(node, ast.JoinedStr):
                continue
            for value, text in itertools.pairwise(node.values):
                if (isinstance(value, ast.FormattedValue) and isinstance(text, ast.Constant)
                        and isinstance(text.value, str) and suffix.match(text.value)):
                    found.add((path.relative_to(REPO).as_posix(), ast.unparse(node)))
    assert found == KNOWN
