"""Issue 15: fbc apply's pre-flight, against moto's server over HTTP (ECR, SSM, Secrets Manager, ACM and S3
are moto's): every problem in one run, one line each, exit 1, nothing created; fbc diff says the same as
warnings. The other deploy tests turn the pre-flight off (their images are not in moto's ECR); these turn it on."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from test_deploy import NETWORK, clean_moto, client, fbc

from specgen import generate

REGISTRY = "123456789012.dkr.ecr.eu-west-1.amazonaws.com"  # moto's account
SPEC = """\
apiVersion: flowbuilder.dev/v1alpha1
kind: App
metadata: {{name: pre}}
spec:
  region: eu-west-1
  runtime:
    image: {registry}/pre-runtime:1.0.0
    secrets: {{API_KEYS: "/pre/${{env}}/api-keys"}}
  queues:
    jobs: {{visibilityTimeout: 5m}}
  services:
    worker:
      type: worker
      runtime: worker
      queue: jobs
      timeout: 5m
      secrets: {{TOKEN: "{secret}"}}
"""
MISSING_SECRET = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:pre-token-AbCdEf"


@pytest.fixture
def aws(moto_server: str, tmp_path: Path) -> dict[str, str]:
    env = clean_moto(moto_server, tmp_path)
    env.pop("FBC_PREFLIGHT")
    return env


def spec(tmp_path: Path, secret: str = MISSING_SECRET) -> list[str]:
    path = tmp_path / "flowbuilder.yaml"
    path.write_text(SPEC.format(registry=REGISTRY, secret=secret), "utf-8")
    return ["-f", str(path), "--profile", "ultra"]


def push(env: dict[str, str], repository: str, tag: str) -> str:
    """An image in moto's ECR; its digest."""
    ecr = client(env, "ecr")
    ecr.create_repository(repositoryName=repository)
    manifest = {"schemaVersion": 2, "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
                "config": {"digest": "sha256:" + "a" * 64}, "layers": []}
    image: dict[str, Any] = ecr.put_image(repositoryName=repository, imageManifest=json.dumps(manifest),
                                          imageTag=tag)["image"]
    return str(image["imageId"]["imageDigest"])


def test_every_problem_in_one_run_and_nothing_created(aws: dict[str, str], tmp_path: Path) -> None:
    refused = fbc(aws, "apply", *spec(tmp_path), *NETWORK, "--yes")
    assert (refused.returncode, refused.stdout) == (1, "")
    assert refused.stderr.splitlines() == [
        f"pre-flight: image {REGISTRY}/pre-runtime:1.0.0: no repository pre-runtime (push it first)",
        "pre-flight: SSM parameter /pre/dev/api-keys: not found (create it first)",
        "pre-flight: SSM parameter /pre/dev/database-url: not found (create it first)",
        f"pre-flight: secret {MISSING_SECRET}: not found (create it first)",
        "fbc: pre-flight found 4 problem(s) to fix first; nothing was created"]
    assert client(aws, "cloudformation").describe_stacks()["Stacks"] == []

    # diff says the same as warnings, and still shows the diff (exit 1: all of it is new).
    diff = fbc(aws, "diff", *spec(tmp_path), *NETWORK)
    assert diff.returncode == 1 and "+ " in diff.stdout
    assert [line for line in diff.stderr.splitlines() if line.startswith("warning: pre-flight: ")] == [
        line.replace("pre-flight: ", "warning: pre-flight: ", 1) for line in refused.stderr.splitlines()[:4]]


def test_an_image_missing_by_tag_or_digest(aws: dict[str, str], tmp_path: Path) -> None:
    push(aws, "pre-runtime", "0.9.0")
    ssm = client(aws, "ssm")
    for name in ("/pre/dev/api-keys", "/pre/dev/database-url"):
        ssm.put_parameter(Name=name, Value="x", Type="SecureString")
    secret = client(aws, "secretsmanager").create_secret(Name="pre-token", SecretString="t")["ARN"]
    digest = "sha256:" + "b" * 64
    for image, said in ((f"{REGISTRY}/pre-runtime:1.0.0", "no image 1.0.0 in pre-runtime"),
                        (f"{REGISTRY}/pre-runtime@{digest}", f"no image {digest} in pre-runtime")):
        result = fbc(aws, "apply", *spec(tmp_path, secret), *NETWORK, "--image", f"runtime={image}", "--yes")
        assert result.returncode == 1
        assert result.stderr.splitlines() == [f"pre-flight: image {image}: {said} (push it first)",
                                              "fbc: pre-flight found 1 problem(s) to fix first; nothing was created"]


def test_with_everything_in_place_apply_deploys(aws: dict[str, str], tmp_path: Path) -> None:
    push(aws, "pre-runtime", "1.0.0")
    ssm = client(aws, "ssm")
    for name in ("/pre/dev/api-keys", "/pre/dev/database-url"):
        ssm.put_parameter(Name=name, Value="x", Type="SecureString")
    secret = client(aws, "secretsmanager").create_secret(Name="pre-token", SecretString="t")["ARN"]
    deployed = fbc(aws, "apply", *spec(tmp_path, secret), *NETWORK, "--yes")
    assert deployed.returncode == 0, deployed.stderr
    assert "pre-flight" not in deployed.stderr and "pre-dev: CREATE_COMPLETE" in deployed.stdout


def test_the_bootstrap_bucket_when_the_template_needs_it(aws: dict[str, str], tmp_path: Path) -> None:
    spec_file = tmp_path / "big.yaml"
    spec_file.write_text(generate(8), "utf-8")  # over the inline limit; in us-east-1
    result = fbc(aws, "apply", "-f", str(spec_file), "--profile", "ultra", *NETWORK, "--yes")
    assert result.returncode == 1
    assert ("pre-flight: bucket fbc-assets-123456789012-us-east-1: not found; the template is ") in result.stderr
    assert "run `fbc bootstrap` once, or pass --bucket" in result.stderr
    assert f"pre-flight: image {REGISTRY}" not in result.stderr  # its images are us-east-1's: checked there
    assert "pre-flight: image 123456789012.dkr.ecr.us-east-1.amazonaws.com/runtime:1: no repository runtime" in (
        result.stderr)
    assert client(aws, "cloudformation", "us-east-1").describe_stacks()["Stacks"] == []


def test_the_certificate_is_issued_and_in_the_stacks_region(aws: dict[str, str], tmp_path: Path) -> None:
    """standard's HTTPS listener: a certificate still pending validation, then one of another region."""
    push(aws, "pre-runtime", "1.0.0")
    path = tmp_path / "web.yaml"
    path.write_text(SPEC.format(registry=REGISTRY, secret=MISSING_SECRET).replace(
        "  services:\n", "  services:\n    api: {type: web, runtime: api, port: 8000, public: true}\n").replace(
        "      secrets: {TOKEN: \"" + MISSING_SECRET + "\"}\n", ""), "utf-8")
    client(aws, "ssm").put_parameter(Name="/pre/dev/api-keys", Value="x", Type="SecureString")
    assert fbc(aws, "bootstrap", "-f", str(path)).returncode == 0  # standard's template is over the inline limit
    pending = client(aws, "acm").request_certificate(DomainName="api.example.com")["CertificateArn"]
    result = fbc(aws, "apply", "-f", str(path), "--profile", "standard", "--param", f"CertificateArn={pending}")
    assert result.stderr.splitlines() == [
        f"pre-flight: certificate {pending}: PENDING_VALIDATION, not ISSUED (validate it in ACM first)",
        "fbc: pre-flight found 1 problem(s) to fix first; nothing was created"]
    elsewhere = pending.replace(":eu-west-1:", ":us-east-1:")
    result = fbc(aws, "apply", "-f", str(path), "--profile", "standard", "--param", f"CertificateArn={elsewhere}")
    assert result.returncode == 1 and result.stderr.splitlines()[0] == (
        f"pre-flight: certificate {elsewhere}: in us-east-1, but the stack deploys to eu-west-1 (a load "
        f"balancer's must be in its own region)")
