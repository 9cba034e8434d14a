"""fbc secret set and list against moto's server over HTTP (SSM, Secrets Manager): a value from stdin is written
as a SecureString and never shown, an existing one is kept without --overwrite, a Secrets Manager reference is
listed but never written, and list tells what exists from metadata only."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from test_deploy import clean_moto, client

from flowbuilder.compiler.cli import cli

SECRET_ARN = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:tiny/${env}/db-AbCdEf"
SPEC = f"""apiVersion: flowbuilder.dev/v1alpha1
kind: App
metadata: {{name: tiny}}
spec:
  region: eu-west-1
  runtime:
    image: 210987654321.dkr.ecr.eu-west-1.amazonaws.com/tiny-runtime:2.3.1
    secrets:
      API_KEYS: "/tiny/${{env}}/api-keys"
  queues:
    jobs: {{visibilityTimeout: 5m}}
  services:
    worker:
      type: worker
      runtime: worker
      queue: jobs
      timeout: 5m
      secrets:
        DB_PASSWORD: "{SECRET_ARN}"
"""
VALUE = "s3cret-value"


@pytest.fixture
def env(moto_server: str, tmp_path: Path) -> dict[str, str]:
    return clean_moto(moto_server, tmp_path)


@pytest.fixture
def spec(tmp_path: Path) -> str:
    path = tmp_path / "flowbuilder.yaml"
    path.write_text(SPEC)
    return str(path)


def fbc(env: dict[str, str], *args: str, stdin: str | None = None) -> Result:
    """fbc in-process; stdin is not a terminal, so set reads the value from it."""
    return CliRunner().invoke(cli, list(args), env=env, input=stdin, catch_exceptions=False)


def ssm(env: dict[str, str]) -> Any:
    return client(env, "ssm")


def test_set_writes_a_secure_string_from_stdin_and_never_shows_it(env: dict[str, str], spec: str) -> None:
    result = fbc(env, "secret", "set", "API_KEYS", "-f", spec, "--env", "dev", stdin=VALUE + "\n")
    assert result.exit_code == 0, result.output
    assert result.stdout == ("API_KEYS: wrote /tiny/dev/api-keys (SSM SecureString, version 1) in eu-west-1; tasks "
                             "and functions read it when they start\n")
    stored = ssm(env).get_parameter(Name="/tiny/dev/api-keys", WithDecryption=True)["Parameter"]
    assert (stored["Type"], stored["Value"]) == ("SecureString", VALUE)  # the newline of `echo` is not kept
    assert VALUE not in result.output

    again = fbc(env, "secret", "set", "API_KEYS", "-f", spec, "--env", "dev", stdin="other")
    assert again.exit_code == 1
    assert "fbc: /tiny/dev/api-keys exists: pass --overwrite to replace its value" in again.stderr
    assert ssm(env).get_parameter(Name="/tiny/dev/api-keys", WithDecryption=True)["Parameter"]["Value"] == VALUE

    replaced = fbc(env, "secret", "set", "API_KEYS", "-f", spec, "--env", "dev", "--overwrite", stdin="other")
    assert replaced.exit_code == 0 and "version 2" in replaced.stdout
    assert ssm(env).get_parameter(Name="/tiny/dev/api-keys", WithDecryption=True)["Parameter"]["Value"] == "other"


def test_set_resolves_env_and_refuses_what_it_does_not_write(env: dict[str, str], spec: str) -> None:
    prod = fbc(env, "secret", "set", "API_KEYS", "-f", spec, "--env", "prod", stdin=VALUE)
    assert prod.exit_code == 0 and "/tiny/prod/api-keys" in prod.stdout
    manager = fbc(env, "secret", "set", "DB_PASSWORD", "-f", spec, stdin=VALUE)
    assert manager.exit_code == 1
    assert ("refers to Secrets Manager (arn:aws:secretsmanager:eu-west-1:123456789012:secret:tiny/dev/db-AbCdEf): "
            "fbc secret set writes SSM parameters only") in manager.stderr
    unknown = fbc(env, "secret", "set", "API_KEY", "-f", spec, stdin=VALUE)
    assert unknown.exit_code == 2
    assert "API_KEY is not a secret of the spec in dev (its secrets: API_KEYS, DB_PASSWORD)" in unknown.stderr
    empty = fbc(env, "secret", "set", "API_KEYS", "-f", spec, stdin="\n")
    assert empty.exit_code == 2 and "the value is empty; nothing written" in empty.stderr
    on_argv = fbc(env, "secret", "set", "API_KEYS", VALUE, "-f", spec)  # a value is never an argument
    assert on_argv.exit_code == 2
    names = [p["Name"] for p in ssm(env).describe_parameters()["Parameters"]]
    assert names == ["/tiny/prod/api-keys"]


def test_list_says_which_exist_in_the_environment_never_their_values(env: dict[str, str], spec: str) -> None:
    missing = fbc(env, "secret", "list", "-f", spec)
    assert missing.exit_code == 1  # one is missing
    assert missing.stdout.splitlines() == [
        "tiny (dev, eu-west-1): 2 secret reference(s)",
        "  API_KEYS     /tiny/dev/api-keys  missing: fbc secret set API_KEYS --env dev (read by worker, scheduler)",
        "  DB_PASSWORD  arn:aws:secretsmanager:eu-west-1:123456789012:secret:tiny/dev/db-AbCdEf  missing (Secrets "
        "Manager) (read by worker)"]
    assert fbc(env, "secret", "set", "API_KEYS", "-f", spec, stdin=VALUE).exit_code == 0
    shown = fbc(env, "secret", "list", "-f", spec, "--format", "json")
    assert VALUE not in shown.output
    listed = json.loads(shown.stdout)
    assert [(s["name"], s["store"], s["exists"]) for s in listed["secrets"]] == [
        ("API_KEYS", "ssm", True), ("DB_PASSWORD", "secretsmanager", False)]
    assert listed["secrets"][0]["detail"].startswith("SSM SecureString, version 1, changed ")
    other = fbc(env, "secret", "list", "-f", spec, "--env", "staging", "--format", "json")
    assert json.loads(other.stdout)["secrets"][0]["exists"] is False  # each environment has its own
