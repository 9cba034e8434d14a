"""fbc graph: the architecture of both profiles, rendered to SVG by Graphviz and parsed by Mermaid's own
parser; the README's diagrams are the tool's current output."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from conftest import IN_CI, REPO, run_fbc, run_fbc_process
from flowbuilder.compiler.build import compile_spec
from flowbuilder.compiler.diagram.model import Diagram, build

SPECS = [REPO / "flowbuilder.yaml", *(REPO / "tests" / "specs" / f"{name}.yaml" for name in ("full", "minimal",
                                                                                            "private-api"))]
MERMAID = REPO / "tests" / "mermaid"


def diagram(profile: str, env: str = "prod", spec: Path = SPECS[0]) -> Diagram:
    return build(compile_spec(spec, profile, env))


def edges(d: Diagram) -> set[tuple[str, str, str]]:
    return {(e.source, e.target, e.label) for e in d.edges}


def test_standard_shows_load_balancer_nat_private_services_and_rds() -> None:
    d = diagram("standard")
    groups = {n.id: n.group for n in d.nodes}
    assert groups["LoadBalancer"] == "public" and groups["NatGateway1"] == groups["NatGateway2"] == "public"
    assert groups["ApiService"] == groups["WorkerService"] == groups["SchedulerFunction"] == "private"
    assert groups["Database"] == "data"
    assert {("Users", "LoadBalancer", "HTTP(S)"), ("LoadBalancer", "ApiService", "/api"),
            ("LoadBalancer", "FrontendService", "default"), ("ApiService", "WorkflowRequestsQueue", "send execution"),
            ("WorkflowRequestsQueue", "WorkerService", "long poll"),
            ("WorkflowRequestsQueue", "WorkflowRequestsDeadLetterQueue", "after 5 receives"),
            ("WorkerService", "Database", "SQL"), ("WorkerService", "NatGateway1", "HTTP steps"),
            ("NightlyReportSchedule", "SchedulerFunction", "invoke"),
            ("SchedulerFunction", "WorkflowRequestsQueue", "send execution")} <= edges(d)
    assert "Multi-AZ" in next(n.detail for n in d.nodes if n.id == "Database")
    assert {g.id for g in d.groups} == {"aws", "vpc", "public", "private", "data"}


def test_ultra_shows_cloudfront_function_urls_a_pipe_spot_tasks_and_the_external_database() -> None:
    d = diagram("ultra")
    ids = {n.id for n in d.nodes}
    assert "LoadBalancer" not in ids and not any(i.startswith("Nat") for i in ids)
    assert {("Users", "Distribution", "HTTPS"), ("Distribution", "FrontendFunction", "default"),
            ("Distribution", "ApiFunction", "/api, /api/*"), ("WorkflowRequestsQueue", "WorkerPipe", "message"),
            ("WorkerPipe", "WorkerTaskDefinition", "RunTask"), ("WorkerTaskDefinition", "Internet", "HTTP steps"),
            ("WorkerTaskDefinition", "Database", "SQL")} <= edges(d)
    assert not [e for e in d.edges if e.source == "Users" and e.target.endswith("Function")]  # all through CloudFront
    assert next(n for n in d.nodes if n.id == "Distribution").group is None  # global, outside the region
    task = next(n for n in d.nodes if n.id == "WorkerTaskDefinition")
    assert task.group == "subnets" and "Fargate Spot" in task.detail
    assert next(n for n in d.nodes if n.id == "Database").label == "PostgreSQL (external)"


def test_only_public_function_urls_go_through_cloudfront() -> None:
    full = edges(diagram("ultra", "prod", SPECS[1]))
    assert {("Distribution", "SiteFunction", "default"), ("Distribution", "ApiFunction", "/api, /api/*"),
            ("Users", "AdminFunction", "function URL (IAM)")} <= full  # admin is private: IAM, no CloudFront
    private = diagram("ultra", "prod", SPECS[3])  # one private API: no distribution
    assert "Distribution" not in {n.id for n in private.nodes}
    assert ("Users", "ApiFunction", "function URL (IAM)") in edges(private)


def test_every_edge_joins_drawn_nodes() -> None:
    for spec in SPECS:
        for profile in ("standard", "ultra"):
            d = diagram(profile, "dev", spec)
            ids = {n.id for n in d.nodes}
            assert {e.source for e in d.edges} | {e.target for e in d.edges} <= ids, (spec, profile)
            assert all(n.group is None or any(g.id == n.group for g in d.groups) for n in d.nodes)


@pytest.mark.skipif(shutil.which("dot") is None and not IN_CI, reason="Graphviz's dot is not installed")
@pytest.mark.parametrize("profile", ["standard", "ultra"])
def test_both_profiles_render_to_svg(profile: str, tmp_path: Path) -> None:
    out = tmp_path / f"{profile}.svg"
    result = run_fbc("graph", "-f", str(SPECS[0]), "--profile", profile, "--env", "prod", "--format", "svg",
                     "-o", str(out))
    assert result.exit_code == 0, result.output
    root = ET.parse(out).getroot()
    assert root.tag == "{http://www.w3.org/2000/svg}svg"
    texts = {t.text for t in root.iter("{http://www.w3.org/2000/svg}text")}
    assert "SQS workflow-requests" in texts and ("Application Load Balancer" in texts) == (profile == "standard")
    assert ("EventBridge Pipe worker" in texts) == (profile == "ultra")


def test_svg_without_graphviz_is_one_line(tmp_path: Path) -> None:
    env = {**os.environ, "PATH": str(tmp_path)}  # no dot there
    done = run_fbc_process("graph", "-f", str(SPECS[0]), "--format", "svg", env=env)
    assert done.returncode == 2
    assert done.stderr.startswith("fbc: svg needs Graphviz's dot on PATH") and done.stderr.count("\n") == 1


def _parse_mermaid(*documents: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["node", str(MERMAID / "parse.mjs")], input="\0".join(documents), capture_output=True,
                          text=True, timeout=120, cwd=MERMAID)


@pytest.mark.skipif(not (MERMAID / "node_modules").exists() and not IN_CI,
                    reason="npm ci --prefix tests/mermaid first")
def test_mermaid_output_parses_with_mermaids_parser() -> None:
    cases = [(spec, profile, env) for spec in SPECS for profile in ("standard", "ultra") for env in ("dev", "prod")]
    texts = [run_fbc("graph", "-f", str(spec), "--profile", profile, "--env", env).output
             for spec, profile, env in cases]
    parsed = _parse_mermaid(*texts)
    assert parsed.stdout.splitlines() == ["ok flowchart-v2"] * len(cases), (parsed.stdout, parsed.stderr)
    broken = _parse_mermaid("flowchart LR\n  a[A] -->\n", texts[0])  # the check itself can fail
    assert broken.returncode == 1 and broken.stdout.splitlines()[0].startswith("error")
    assert broken.stdout.splitlines()[1] == "ok flowchart-v2"


@pytest.mark.parametrize("profile", ["standard", "ultra"])
def test_the_readme_shows_the_tools_current_diagrams(profile: str) -> None:
    readme = (REPO / "README.md").read_text("utf-8")
    found = re.search(rf"<!-- fbc graph --profile {profile} --env prod -->\n```mermaid\n(.*?)```", readme, re.S)
    assert found, f"README has no diagram for {profile}"
    current = run_fbc("graph", "--profile", profile, "--env", "prod", cwd=REPO).output
    assert found.group(1) == current, (f"README's {profile} diagram is stale: paste the output of "
                                       f"`fbc graph --profile {profile} --env prod`")


def test_every_emitted_resource_type_is_drawn_or_known_plumbing() -> None:
    from flowbuilder.compiler.diagram.model import DRAWN, NOT_DRAWN

    seen = set()
    for spec in SPECS:
        for profile in ("standard", "ultra"):
            for env in ("dev", "staging", "prod"):
                body = json.loads(compile_spec(spec, profile, env).built.body)
                seen |= {r["Type"] for r in body["Resources"].values()}
    assert seen - DRAWN - NOT_DRAWN == set(), "a new resource type: draw it or list it in NOT_DRAWN"
    assert not DRAWN & NOT_DRAWN


def test_private_pipe_tasks_go_out_through_the_nat_and_functions_in_the_vpc_sit_in_its_subnets(
        tmp_path: Path) -> None:
    profile = tmp_path / "recombined.yaml"
    profile.write_text("apiVersion: flowbuilder.dev/v1alpha1\nkind: Profile\nmetadata: {name: recombined}\n"
                       "extends: standard\nspec:\n  web: {serving: function-url}\n  workers: {dispatch: pipe}\n",
                       "utf-8")
    d = diagram(str(profile), "prod")
    groups = {n.id: n.group for n in d.nodes}
    assert groups["ApiFunction"] == groups["WorkerTaskDefinition"] == groups["SchedulerFunction"] == "private"
    assert groups["FrontendFunction"] == "aws"  # its own image: no database, so outside the VPC
    assert ("WorkerTaskDefinition", "NatGateway1", "HTTP steps") in edges(d)
    assert not [e for e in d.edges if e.source == "WorkerTaskDefinition" and e.target == "Internet"]


@pytest.mark.parametrize("profile", ["standard", "ultra"])
def test_the_alarms_drawn_are_those_that_notify_the_alert_topic(profile: str) -> None:
    compiled = compile_spec(SPECS[0], profile, "prod")
    resources = json.loads(compiled.template_text("json"))["Resources"]
    notifying = [rid for rid, r in resources.items() if r["Type"] == "AWS::CloudWatch::Alarm"
                 and {"Ref": "AlertTopic"} in r["Properties"].get("AlarmActions", [])]
    node = next(n for n in build(compiled).nodes if n.id == "Alarms")
    assert node.label == f"CloudWatch alarms ({len(notifying)})"
