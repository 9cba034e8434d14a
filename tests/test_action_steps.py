"""action.yml's bash steps run as the Actions runner runs a composite action's steps (bash -eo pipefail, the step's
env with its expressions filled in, $GITHUB_OUTPUT per step, `if:` conditions), against the GitHub of
tests/github_fake.py on 127.0.0.1. `fbc diff` compares with a built template (args: --against FILE) instead of a
deployed stack, and the `uses:` steps and the install step (pip, minutes) are left out: fbc is this venv's."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml
from github_fake import BOT, State, fake_github
from test_deploy import MINIMAL, NETWORK, clean_moto, client

from conftest import REPO

ACTION: dict[str, Any] = yaml.safe_load((REPO / "action.yml").read_text("utf-8"))
TOKEN = "ghs_workflowtoken0123456789"
EXPRESSION = re.compile(r"\$\{\{ ([\w.-]+) \}\}")
CONDITION = re.compile(r"([\w.-]+) == '([\w-]*)'")
SKIPPED = {"install fbc"}  # pip install of the action's checkout: test_precommit.py's try-repo does the same


@dataclass
class Run:
    context: dict[str, Any]
    env: dict[str, str]
    outputs: dict[str, dict[str, str]] = field(default_factory=dict)
    log: list[str] = field(default_factory=list)
    failed: str = ""

    def value(self, path: str) -> str:
        node: Any = self.context
        head, *rest = path.split(".")
        if head == "steps":  # steps.ID.outputs.NAME
            return self.outputs.get(rest[0], {}).get(rest[2], "")
        for part in [head, *rest]:
            node = node.get(part, "") if isinstance(node, dict) else ""
        return str(node)

    def fill(self, text: str) -> str:
        if "${{" in EXPRESSION.sub("", text):
            raise AssertionError(f"an expression this runner does not know: {text}")
        return EXPRESSION.sub(lambda m: self.value(m[1]), text)

    def runs(self, step: dict[str, Any]) -> bool:
        if "if" not in step:
            return True
        found = CONDITION.fullmatch(step["if"])
        assert found, f"a condition this runner does not know: {step['if']}"
        return self.value(found[1]) == found[2]


def run_action(tmp_path: Path, api: str, inputs: dict[str, str], workspace: Path,
               environment: dict[str, str] | None = None) -> Run:
    defaults = {name: str(spec.get("default", "")) for name, spec in ACTION["inputs"].items()}
    tmp_path.mkdir(parents=True, exist_ok=True)
    event = tmp_path / "event.json"
    event.write_text(json.dumps({"pull_request": {"number": 7}}), "utf-8")
    temp = tmp_path / "runner-temp"
    temp.mkdir()
    github = {"action_path": str(REPO), "token": TOKEN, "event_name": "pull_request",
              "event": {"pull_request": {"number": 7}}}
    run = Run({"inputs": {**defaults, **inputs}, "github": github}, {
        **(environment or os.environ), "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
        "RUNNER_TEMP": str(temp),
        "GITHUB_REPOSITORY": "acme/app", "GITHUB_API_URL": api, "GITHUB_EVENT_PATH": str(event),
        "GITHUB_EVENT_NAME": "pull_request", "GITHUB_STEP_SUMMARY": str(tmp_path / "summary.md"),
        "GITHUB_PATH": str(tmp_path / "path")})
    run.context["inputs"] = {name: run.fill(value) for name, value in run.context["inputs"].items()}  # github.token
    for number, step in enumerate(ACTION["runs"]["steps"]):
        if "uses" in step or step["name"] in SKIPPED or not run.runs(step):
            continue
        output = tmp_path / f"output-{number}"
        output.touch()
        env = {**run.env, "GITHUB_OUTPUT": str(output),
               **{name: run.fill(str(value)) for name, value in step.get("env", {}).items()}}
        done = subprocess.run(["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", step["run"]], env=env,
                              cwd=workspace, capture_output=True, text=True, timeout=300)
        run.log.append(f"{step['name']}: {done.returncode}\n{done.stdout}{done.stderr}")
        if "id" in step:
            run.outputs[step["id"]] = dict(line.split("=", 1) for line in output.read_text().splitlines())
        if done.returncode != 0:
            run.failed = step["name"]
            break
    return run


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    """This repository's spec, its dev template built, then a queue added: the pull request's change."""
    root = tmp_path / "workspace"
    root.mkdir()
    spec = (REPO / "flowbuilder.yaml").read_text("utf-8")
    (root / "flowbuilder.yaml").write_text(spec, "utf-8")
    subprocess.run([str(Path(sys.executable).parent / "fbc"), "build", "--env", "dev", "-o", "build"], cwd=root,
                   check=True, capture_output=True)
    changed = spec.replace("  queues:\n", "  queues:\n    audit-events: {visibilityTimeout: 1m, retention: 1d}\n", 1)
    assert changed != spec
    (root / "flowbuilder.yaml").write_text(changed, "utf-8")
    return root


def test_diff_mode_comments_once_and_sets_the_outputs(tmp_path: Path, workspace: Path) -> None:
    state = State(tokens={TOKEN: None}, repos={"acme/app"})
    inputs = {"environment": "dev", "args": "--against build/flow-builder-dev.template.json"}
    with fake_github(state) as api:
        first = run_action(tmp_path / "first", api, inputs, workspace)
        assert not first.failed, first.log
        second = run_action(tmp_path / "second", api, inputs, workspace)
        assert not second.failed, second.log
    outputs = {name: second.fill(spec["value"]) for name, spec in ACTION["outputs"].items()}
    assert outputs["has-changes"] == "true" and outputs["risky"] == "false"
    assert re.fullmatch(r"[+-]\d+\.\d\d", outputs["cost-delta"])
    assert second.outputs["diff"]["exit-code"] == "1"  # changes: not a failure
    comments = state.comments[("acme/app", 7)]
    assert len(comments) == 1 and comments[0]["user"]["login"] == BOT
    assert comments[0]["body"] == Path(outputs["body-file"]).read_text("utf-8")
    assert comments[0]["body"].startswith("<!-- flowbuilder:diff stack=flow-builder-dev -->\n")
    assert "::warning file=flowbuilder.yaml" in first.log[1]  # fbc validate --format github: annotations
    assert (tmp_path / "second" / "summary.md").read_text("utf-8") == comments[0]["body"]


def test_comment_author_finds_a_github_app_tokens_comment(tmp_path: Path, workspace: Path) -> None:
    """An installation token (GET /user: 403) writes as <app-slug>[bot]: with comment-author the step updates
    that comment instead of adding one each run."""
    app = "ghs_installationtoken0123456789"
    state = State(tokens={app: None}, repos={"acme/app"}, bots={app: "my-app[bot]"})
    old = state.add("acme/app", 7, "my-app[bot]", "<!-- flowbuilder:diff stack=flow-builder-dev -->\nold\n")
    inputs = {"environment": "dev", "cost": "false", "github-token": app, "comment-author": "my-app[bot]",
              "args": "--against build/flow-builder-dev.template.json"}
    with fake_github(state) as api:
        run = run_action(tmp_path, api, inputs, workspace)
    assert not run.failed, run.log
    assert state.comments[("acme/app", 7)] == [old]
    assert old["body"] == Path(run.outputs["diff"]["body-file"]).read_text("utf-8")
    assert "updated comment" in run.log[-2]  # the comment step; the last is the refused-diff check
    assert ("GET", "/user") not in state.log


def test_comment_and_cost_false_set_outputs_without_github(tmp_path: Path, workspace: Path) -> None:
    run = run_action(tmp_path, "http://127.0.0.1:9", {"environment": "dev", "comment": "false", "cost": "false",
                                                       "args": "--against build/flow-builder-dev.template.json"},
                     workspace)
    assert not run.failed, run.log
    assert run.outputs["comment"] == {"has-changes": "true", "risky": "false", "cost-delta": ""}


def test_invalid_spec_fails_the_validate_step_with_an_annotation(tmp_path: Path, workspace: Path) -> None:
    spec = workspace / "flowbuilder.yaml"
    spec.write_text(spec.read_text("utf-8").replace("retention: 1d", "retention: 1 fortnight"), "utf-8")
    run = run_action(tmp_path, "http://127.0.0.1:9", {"environment": "dev"}, workspace)
    assert run.failed == "fbc validate"
    assert "::error file=flowbuilder.yaml,line=" in run.log[-1]


def test_a_diff_error_fails_the_step_and_a_bad_mode_is_refused(tmp_path: Path, workspace: Path) -> None:
    broken = run_action(tmp_path / "a", "http://127.0.0.1:9", {"environment": "dev", "args": "--against nothing.json"},
                        workspace)
    assert broken.failed == "fbc diff" and broken.outputs["diff"]["exit-code"] == "2"
    mode = run_action(tmp_path / "b", "http://127.0.0.1:9", {"environment": "dev", "mode": "plan"}, workspace)
    assert mode.failed == "check the inputs" and "::error::mode must be diff or apply, not 'plan'" in mode.log[0]


def test_apply_mode_deploys_then_diff_mode_finds_nothing(tmp_path: Path, moto_server: str) -> None:
    """Against moto's CloudFormation over HTTP: apply (bootstrap, apply --yes), then a pull request's diff of the
    same spec says no changes, and comments so. The args are an `args: |` block, one flag a line: every line
    reaches fbc (the stack has both parameters), not only the first."""
    environment = clean_moto(moto_server, tmp_path)
    workspace = tmp_path / "workspace"
    workspace.mkdir()
    (workspace / "flowbuilder.yaml").write_text(MINIMAL.read_text("utf-8"), "utf-8")
    block = " ".join(NETWORK).replace("--param ", "--param=").replace(" ", "\n  ") + "\n"  # as YAML's | gives it
    assert block.count("\n") == 2
    inputs = {"environment": "dev", "profile": "ultra", "args": block}
    applied = run_action(tmp_path / "apply", "http://127.0.0.1:9", {**inputs, "mode": "apply"}, workspace,
                         environment)
    assert not applied.failed, applied.log
    assert "tiny-dev: CREATE_COMPLETE" in applied.log[-1]
    stack = client(environment, "cloudformation").describe_stacks(StackName="tiny-dev")["Stacks"][0]
    deployed = {p["ParameterKey"]: p.get("ParameterValue") for p in stack["Parameters"]}
    # moto gives a List<> parameter's value as a Python list's text
    assert (deployed["VpcId"], deployed["SubnetIds"]) == ("vpc-0abc", "['subnet-1', 'subnet-2']")
    state = State(tokens={TOKEN: None}, repos={"acme/app"})
    with fake_github(state) as api:
        # The spec is in eu-west-1; fbc's price file has us-east-1's prices only.
        planned = run_action(tmp_path / "diff", api, {**inputs, "prices-region": "us-east-1"}, workspace, environment)
    assert not planned.failed, planned.log
    assert planned.outputs["diff"]["exit-code"] == "0" and planned.outputs["comment"]["has-changes"] == "false"
    assert state.comments[("acme/app", 7)][0]["body"].startswith("<!-- flowbuilder:diff stack=tiny-dev -->")


def test_a_refused_profile_switch_is_commented_and_then_fails_the_job(tmp_path: Path, moto_server: str) -> None:
    """fbc diff refuses a profile switch (exit 2) with a comment body that says what the switch deletes: the
    action posts it, so the pull request shows why, and fails the job after."""
    environment = clean_moto(moto_server, tmp_path)
    workspace = tmp_path / "workspace"
    workspace.mkdir()
    (workspace / "flowbuilder.yaml").write_text(MINIMAL.read_text("utf-8"), "utf-8")
    inputs = {"environment": "dev", "profile": "ultra", "args": " ".join(NETWORK).replace("--param ", "--param="),
              "cost": "false"}
    applied = run_action(tmp_path / "apply", "http://127.0.0.1:9", {**inputs, "mode": "apply"}, workspace,
                         environment)
    assert not applied.failed, applied.log
    state = State(tokens={TOKEN: None}, repos={"acme/app"})
    with fake_github(state) as api:
        refused = run_action(tmp_path / "diff", api, {**inputs, "profile": "standard", "args": ""}, workspace,
                             environment)
    assert refused.failed == "fail on a refused diff", refused.log
    assert refused.outputs["diff"]["exit-code"] == "2"
    body = state.comments[("acme/app", 7)][0]["body"]
    assert body.startswith("<!-- flowbuilder:diff stack=tiny-dev -->") and '"exit": 2' in body


RECORDED_SPEC = """\
apiVersion: flowbuilder.dev/v1alpha1
kind: App
metadata: {name: perm}
spec:
  region: eu-west-1
  runtime:
    image: 123456789012.dkr.ecr.eu-west-1.amazonaws.com/perm-runtime:1.0.0
    secrets: {API_KEYS: "/perm/${env}/api-keys"}
  queues:
    jobs: {visibilityTimeout: 5m}
QUEUES  services:
    worker:
      type: worker
      runtime: worker
      queue: jobs
      timeout: 5m
      secrets: {TOKEN: "arn:aws:secretsmanager:eu-west-1:123456789012:secret:perm-token-AbCdEf"}
"""


def documented_diff_actions() -> set[str]:
    """The actions of docs/github-actions.md's flowbuilder-diff policy (the JSON block after its heading)."""
    docs = (REPO / "docs" / "github-actions.md").read_text("utf-8")
    block = re.search(r"<!-- flowbuilder-diff policy -->\n```json\n(.*?)\n```", docs, re.S)
    assert block, "docs/github-actions.md has no flowbuilder-diff policy block"
    return {action for statement in json.loads(block[1])["Statement"] for action in statement["Action"]}


# botocore's operation -> the IAM action it needs, where the names differ; None: no permission needed
IAM_ACTION = {"s3:HeadBucket": "s3:ListBucket", "s3:HeadObject": "s3:GetObject", "sts:GetCallerIdentity": None}


def test_the_diff_roles_documented_policy_covers_every_call_fbc_diff_makes(
        tmp_path: Path, moto_server: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """fbc diff in this process against moto, with every botocore call recorded: a deployed stack changed so
    that its template is over the inline limit (uploaded to the bootstrap bucket, a change set), with the
    pre-flight and --cost; and a stack not deployed (the default VPC's lookup). Each call maps to an action of
    docs/github-actions.md's flowbuilder-diff policy."""
    from botocore.client import BaseClient
    from test_deploy import invoke

    environment = clean_moto(moto_server, tmp_path)
    spec = tmp_path / "flowbuilder.yaml"
    spec.write_text(RECORDED_SPEC.replace("QUEUES", ""), "utf-8")
    assert invoke(environment, "bootstrap", "-f", str(spec)).exit_code == 0
    applied = invoke(environment, "apply", "-f", str(spec), "--profile", "ultra", "--env", "dev", *NETWORK, "--yes")
    assert applied.exit_code == 0, applied.output
    queues = "".join(f"    q{n}: {{visibilityTimeout: 5m}}\n" for n in range(40))
    spec.write_text(RECORDED_SPEC.replace("QUEUES", queues), "utf-8")

    calls: set[str] = set()
    original = BaseClient._make_api_call

    def record(client: Any, operation: str, params: Any) -> Any:
        calls.add(f"{client.meta.service_model.signing_name}:{operation}")
        return original(client, operation, params)

    monkeypatch.setattr(BaseClient, "_make_api_call", record)
    checked = {k: v for k, v in environment.items() if k != "FBC_PREFLIGHT"}
    changed = invoke(checked, "diff", "-f", str(spec), "--profile", "ultra", "--env", "dev", "--format", "markdown",
                     "--cost")
    assert changed.exit_code == 1, changed.output
    assert "uploaded to s3://fbc-assets-123456789012-eu-west-1/perm-dev/" in changed.stderr
    new = invoke(checked, "diff", "-f", str(spec), "--profile", "ultra", "--env", "staging", "--format", "markdown")
    assert new.exit_code == 1, new.output
    needed = {IAM_ACTION.get(call, call) for call in calls} - {None}
    assert {"s3:PutObject", "cloudformation:CreateChangeSet", "ec2:DescribeVpcs", "ecr:DescribeImages",
            "ssm:GetParameter", "secretsmanager:DescribeSecret"} <= needed  # the paths above were taken
    assert needed - documented_diff_actions() == set()
