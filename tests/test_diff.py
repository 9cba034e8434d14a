"""The diff output on a known pair of templates, as a reviewed snapshot: an in-place change, a
replacement, a removal, IAM and network broadening, a parameter change."""

from __future__ import annotations

import copy
import io
import json
from typing import Any

import pytest

from build_helpers import template
from conftest import REPO
from flowbuilder.compiler.deploy.diff import diff_templates, render_json, render_text, use_colour

SNAPSHOT = REPO / "tests" / "diff" / "minimal-ultra-dev.expected.txt"


def changed(old: dict[str, Any]) -> dict[str, Any]:
    new = copy.deepcopy(old)
    res = new["Resources"]
    res["WorkerTaskDefinition"]["Properties"]["Memory"] = "1024"  # create-only: replaces
    res["JobsQueue"]["Properties"]["VisibilityTimeout"] = 600  # in place
    res["TaskSecurityGroup"]["Properties"]["SecurityGroupIngress"] = [
        {"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22, "CidrIp": "0.0.0.0/0", "Description": "ssh"}]
    res["WorkerTaskRole"]["Properties"]["Policies"][0]["PolicyDocument"]["Statement"].append(
        {"Sid": "ReadData", "Effect": "Allow", "Action": ["s3:GetObject"], "Resource": ["arn:aws:s3:::data/*"]})
    del res["SchedulerDeadLetterAlarm"]
    new["Parameters"]["AlertEmail"]["Default"] = "ops@example.com"
    return new


def test_diff_snapshot() -> None:
    old = template("minimal", "ultra", "dev")
    result = diff_templates(old, changed(old))
    assert render_text(result) + "\n" == SNAPSHOT.read_text("utf-8"), (
        "review the new output, then write it to tests/diff/minimal-ultra-dev.expected.txt")
    assert result.risky == [
        "removes SchedulerDeadLetterAlarm", "replaces WorkerTaskDefinition",
        "broadens iam access: WorkerTaskRole Allow s3:GetObject on arn:aws:s3:::data/*",
        "broadens network access: TaskSecurityGroup ingress tcp 22-22 from 0.0.0.0/0"]


def test_narrowing_is_not_risky() -> None:
    old = template("minimal", "ultra", "dev")
    result = diff_templates(changed(old), old)
    assert [s.broadens for s in result.security] == [False, False]
    assert [r for r in result.risky if r.startswith("broadens")] == []


def test_identical_templates_have_no_diff() -> None:
    old = template("minimal", "ultra", "dev")
    result = diff_templates(old, copy.deepcopy(old))
    assert result.empty and render_text(result) == "no differences"
    assert json.loads(render_json(result))["empty"] is True


def test_colour_only_on_a_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    monkeypatch.delenv("NO_COLOR", raising=False)
    assert use_colour(Tty()) is True and use_colour(io.StringIO()) is False
    monkeypatch.setenv("NO_COLOR", "1")
    assert use_colour(Tty()) is False
    old = template("minimal", "ultra", "dev")
    assert "\033[33m~ JobsQueue" in render_text(diff_templates(old, changed(old)), colour=True)
