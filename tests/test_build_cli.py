"""`fbc build` as users run it: files, summary, exit codes, limits."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

from build_helpers import compiled
from conftest import REPO, run_fbc
from specgen import generate


def test_build_writes_template_and_parameters(tmp_path: Path) -> None:
    result = run_fbc("build", "-f", str(REPO / "flowbuilder.yaml"), "--profile", "ultra", "--env", "prod",
                     "-o", str(tmp_path))
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["flow-builder-prod.parameters.json",
                                                          "flow-builder-prod.template.json"]
    lines = result.stdout.splitlines()
    assert lines[0].startswith("flow-builder-prod: 37 resources, 7 parameters, 6 outputs (ultra profile, prod)")
    assert "    1  AWS::Pipes::Pipe" in lines
    assert "parameters to provide: SubnetIds, VpcId" in lines
    params = {p["ParameterKey"]: p["ParameterValue"]
              for p in json.loads((tmp_path / "flow-builder-prod.parameters.json").read_text("utf-8"))}
    assert params["VpcId"] == "" and params["DatabaseUrlParameter"] == "/flow-builder/prod/database-url"
    assert params["RuntimeImage"] == "123456789012.dkr.ecr.us-east-1.amazonaws.com/flow-builder-runtime:1.0.0"


def test_build_says_when_the_template_needs_s3(tmp_path: Path) -> None:
    result = run_fbc("build", "-f", str(REPO / "flowbuilder.yaml"), "--env", "prod", "-o", str(tmp_path))
    assert result.exit_code == 0
    assert "over CloudFormation's 51200-byte inline limit: deploying uploads it to S3 first" in result.stdout


def test_yaml_format(tmp_path: Path) -> None:
    result = run_fbc("build", "-f", str(REPO / "flowbuilder.yaml"), "--format", "yaml", "-o", str(tmp_path))
    assert result.exit_code == 0
    text = (tmp_path / "flow-builder-dev.template.yaml").read_text("utf-8")
    assert text.startswith("AWSTemplateFormatVersion: '2010-09-09'\n")


def test_invalid_spec_builds_nothing(tmp_path: Path) -> None:
    result = run_fbc("build", "-f", str(REPO / "tests/corpus/visibility-shorter-than-timeout.yaml"),
                     "-o", str(tmp_path / "out"))
    assert result.exit_code == 1
    assert "visibilityTimeout: 5m is shorter than the timeout" in result.stdout
    assert not (tmp_path / "out").exists()


def test_unknown_profile_is_a_usage_error(tmp_path: Path) -> None:
    result = run_fbc("build", "-f", str(REPO / "flowbuilder.yaml"), "--profile", "nope", "-o", str(tmp_path))
    assert result.exit_code == 2


def test_hundred_of_everything_fails_clearly_at_the_resource_limit(tmp_path: Path) -> None:
    spec = tmp_path / "flowbuilder.yaml"
    spec.write_text(generate(100), "utf-8")
    for profile in ("standard", "ultra"):
        result = run_fbc("build", "-f", str(spec), "--profile", profile, "-o", str(tmp_path / "out"))
        assert result.exit_code == 1
        assert result.stderr.startswith("fbc: the application needs more than 500 resources")
        assert "split it into several specs" in result.stderr
    assert not (tmp_path / "out").exists()


def _skips(template: dict[str, object]) -> list[tuple[str, str]]:
    resources = template["Resources"]
    assert isinstance(resources, dict)
    return [(logical_id, skip["id"]) for logical_id, resource in resources.items()
            for skip in (resource.get("Metadata") or {}).get("checkov", {}).get("skip", [])]


def test_build_counts_checkov_suppressions_from_the_template(tmp_path: Path) -> None:
    for profile in ("standard", "ultra"):
        out = tmp_path / profile
        result = run_fbc("build", "-f", str(REPO / "tests/specs/full.yaml"), "--profile", profile, "--env", "prod",
                         "-o", str(out))
        assert result.exit_code == 0, result.output
        skips = _skips(json.loads((out / "acme-flows-prod.template.json").read_text("utf-8")))
        last = result.stdout.splitlines()[-1]  # after the summary and the files written
        if skips:
            checks, holders = len(skips), len({logical_id for logical_id, _ in skips})
            assert last == (f"checkov: {checks} check{'s' * (checks != 1)} suppressed in {holders} "
                            f"resource{'s' * (holders != 1)} (reasons in each resource's Metadata)")
        else:
            assert last == "checkov: no checks suppressed"
        assert "checkov" not in result.stderr  # stderr holds the spec's warnings only (ultra: two)


def test_suppression_summary_counts_skip_entries_and_their_resources() -> None:
    base = compiled("minimal", "ultra", "dev")

    def with_resources(resources: dict[str, object]) -> str:
        body = json.dumps({"Resources": resources})
        return dataclasses.replace(base, built=dataclasses.replace(base.built, body=body)).suppression_summary()

    def skipped(*ids: str) -> dict[str, object]:
        return {"Type": "AWS::SQS::Queue", "Metadata": {"checkov": {"skip": [
            {"id": i, "comment": "a reason long enough to judge"} for i in ids]}}}

    assert with_resources({"Q": {"Type": "AWS::SQS::Queue"}}) == "checkov: no checks suppressed"
    assert with_resources({"Q": skipped("CKV_AWS_27")}) == (
        "checkov: 1 check suppressed in 1 resource (reasons in each resource's Metadata)")
    assert with_resources({"A": skipped("CKV_AWS_27", "CKV_AWS_28"), "B": skipped("CKV_AWS_27"),
                           "C": {"Type": "AWS::SQS::Queue", "Metadata": {"other": 1}}}) == (
        "checkov: 3 checks suppressed in 2 resources (reasons in each resource's Metadata)")


def test_build_says_when_a_stack_serves_plain_http(tmp_path: Path) -> None:
    spec = str(REPO / "flowbuilder.yaml")
    dev = run_fbc("build", "-f", spec, "--env", "dev", "-o", str(tmp_path))
    assert "HTTP only in dev: no certificate (spec https.certificateArn, or --param CertificateArn=...)" in dev.stdout
    prod = run_fbc("build", "-f", spec, "--env", "prod", "-o", str(tmp_path))
    assert "HTTP only" not in prod.stdout
    assert "parameters to provide: CertificateArn" in prod.stdout  # prod cannot deploy without one


def test_build_warns_where_ultra_changes_what_a_spec_means(tmp_path: Path) -> None:
    spec = str(REPO / "tests" / "specs" / "full.yaml")
    ultra = run_fbc("build", "-f", spec, "--profile", "ultra", "-o", str(tmp_path))
    assert ultra.exit_code == 0  # warnings, not errors: the stack is sound, the semantics differ
    assert f"{spec}:56:14: warning: spec.services.order-sync.image: worker 'order-sync' runs its own image under " \
           "Pipe dispatch (ultra): each message is deleted when its task starts" in ultra.stderr
    assert "its FIFO order is not kept" in ultra.stderr
    assert f"{spec}:44:16: warning: spec.services.admin.secrets: web service 'admin' runs its own image on " \
           "Lambda (ultra), which injects no secrets" in ultra.stderr
    standard = run_fbc("build", "-f", spec, "--profile", "standard", "-o", str(tmp_path))
    assert "warning" not in standard.stderr
