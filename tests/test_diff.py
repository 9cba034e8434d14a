"""The diff output on a known pair of templates, as a reviewed snapshot: an in-place change, a
replacement, a removal, IAM and network broadening, a parameter change."""

from __future__ import annotations

import copy
import io
import json
from pathlib import Path
from typing import Any

import pytest

from build_helpers import template
from conftest import REPO, run_fbc
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


# --- checkov suppressions ---------------------------------------------------------------------------------------

def with_skips(doc: dict[str, Any], skips: dict[str, list[tuple[str, str]]]) -> dict[str, Any]:
    """The template with exactly these checkov suppressions (logical ID -> [(check, reason)]) in Metadata."""
    new = copy.deepcopy(doc)
    for resource in new["Resources"].values():
        metadata = resource.get("Metadata") or {}
        metadata.pop("checkov", None)
        if "Metadata" in resource and not metadata:
            del resource["Metadata"]
    for logical_id, pairs in skips.items():
        new["Resources"][logical_id].setdefault("Metadata", {})["checkov"] = {
            "skip": [{"id": check, "comment": reason} for check, reason in pairs]}
    return new


SSE = "Encrypted with SSE-SQS: SQS-owned keys at no cost"


def test_suppressions_added_reworded_and_removed_are_security_changes() -> None:
    base = template("minimal", "ultra", "dev")
    old = with_skips(base, {"JobsQueue": [("CKV_AWS_27", SSE)],
                            "SchedulerLogGroup": [("CKV_AWS_158", "CloudWatch Logs' own key, no cost")]})
    new = with_skips(base, {"JobsQueue": [("CKV_AWS_27", SSE + ", and no key grants")],
                            "WorkerLogGroup": [("CKV_AWS_158", "CloudWatch Logs' own key, no cost"),
                                               ("CKV_AWS_66", "retention set by the profile, 14 days")]})
    result = diff_templates(old, new)
    text = render_text(result).splitlines()
    security = text[text.index("Security changes") + 1:-1]
    assert security == [
        "+ [checkov] suppressed CKV_AWS_158 on WorkerLogGroup: CloudWatch Logs' own key, no cost",
        "+ [checkov] suppressed CKV_AWS_66 on WorkerLogGroup: retention set by the profile, 14 days",
        f"+ [checkov] suppressed CKV_AWS_27 on JobsQueue: {SSE}, and no key grants (reason was: {SSE})",
        "- [checkov] no longer suppressed CKV_AWS_158 on SchedulerLogGroup "
        "(reason was: CloudWatch Logs' own key, no cost)"]
    assert text[-1] == ("0 to add, 3 to modify (0 replaced), 0 to remove; 0 security broadening(s), "
                        "3 checkov suppression(s) added or reworded")
    assert "~ WorkerLogGroup (AWS::Logs::LogGroup)" in text  # the Metadata change is listed with the resource
    # Shown for review, but grants nothing by itself: apply does not ask for it.
    assert result.risky == []
    entries = json.loads(render_json(result))["security"]
    assert entries[2] == {"kind": "checkov", "broadens": True, "resource": "JobsQueue", "check": "CKV_AWS_27",
                          "comment": SSE + ", and no key grants", "was": SSE,
                          "detail": f"CKV_AWS_27: {SSE}, and no key grants (reason was: {SSE})"}
    assert entries[3] == {"kind": "checkov", "broadens": False, "resource": "SchedulerLogGroup",
                          "check": "CKV_AWS_158", "comment": "CloudWatch Logs' own key, no cost", "was": None,
                          "detail": "CKV_AWS_158: CloudWatch Logs' own key, no cost"}


def test_unchanged_suppressions_are_no_change() -> None:
    doc = with_skips(template("minimal", "ultra", "dev"), {"JobsQueue": [("CKV_AWS_27", SSE)]})
    assert diff_templates(doc, copy.deepcopy(doc)).empty


def test_a_new_stack_lists_every_suppression_it_brings() -> None:
    doc = with_skips(template("minimal", "ultra", "dev"), {"JobsQueue": [("CKV_AWS_27", SSE)]})
    checkov = [s for s in diff_templates(None, doc).security if s.kind == "checkov"]
    assert [(s.broadens, s.resource, s.check, s.comment) for s in checkov] == [(True, "JobsQueue", "CKV_AWS_27", SSE)]


def test_fbc_diff_against_a_file_shows_suppressions(tmp_path: Path) -> None:
    """Offline, as a pull request runs it: the deployed template has none of today's suppressions and one the
    build no longer carries."""
    spec = REPO / "tests" / "specs" / "minimal.yaml"
    built = template("minimal", "ultra", "dev")
    skips = sorted((logical_id, skip["id"], skip["comment"]) for logical_id, resource in built["Resources"].items()
                   for skip in (resource.get("Metadata") or {}).get("checkov", {}).get("skip", []))
    deployed = with_skips(built, {"SchedulerDeadLetterAlarm": [("CKV_AWS_999", "an alarm exception since retired")]})
    against = tmp_path / "deployed.json"
    against.write_text(json.dumps(deployed), "utf-8")

    result = run_fbc("diff", "-f", str(spec), "--profile", "ultra", "--against", str(against))
    assert result.exit_code == 1, result.output
    lines = result.stdout.splitlines()
    shown = [line for line in lines if "[checkov]" in line]
    assert shown == [f"+ [checkov] suppressed {check} on {logical_id}: {comment}"
                     for logical_id, check, comment in skips] + [
        "- [checkov] no longer suppressed CKV_AWS_999 on SchedulerDeadLetterAlarm "
        "(reason was: an alarm exception since retired)"]
    as_json = json.loads(run_fbc("diff", "-f", str(spec), "--profile", "ultra", "--against", str(against),
                                 "--format", "json").stdout)
    checkov = [(s["resource"], s["check"], s["broadens"]) for s in as_json["security"] if s["kind"] == "checkov"]
    assert checkov == [*((logical_id, check, True) for logical_id, check, _ in skips),
                       ("SchedulerDeadLetterAlarm", "CKV_AWS_999", False)]
