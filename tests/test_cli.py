"""The fbc command as users and CI meet it: help, version, exit codes, output formats, import hygiene."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import click
import pytest
from botocore.exceptions import ClientError
from click.testing import CliRunner

from conftest import CORPUS, REPO, run_fbc, run_fbc_process
from flowbuilder.compiler.cli import cli
from flowbuilder.compiler.cli.common import reported
from flowbuilder.compiler.deploy.transport import SetupError

VERBS = sorted(cli.commands)


def test_version() -> None:
    result = run_fbc("--version")
    assert result.exit_code == 0
    assert result.stdout.startswith("fbc, version 0.1.0")


@pytest.mark.parametrize("verb", VERBS)
def test_every_verb_has_help(verb: str) -> None:
    result = run_fbc(verb, "--help")
    assert result.exit_code == 0
    assert result.stdout.startswith(f"Usage: fbc {verb}")


def test_valid_spec_exits_zero_with_summary_on_stderr() -> None:
    proc = run_fbc_process("validate", "-f", str(REPO / "flowbuilder.yaml"))
    assert proc.returncode == 0
    assert proc.stdout == ""
    assert proc.stderr.strip().endswith("flowbuilder.yaml: valid")


def test_invalid_spec_exits_one() -> None:
    proc = run_fbc_process("validate", "-f", "visibility-over-maximum.yaml", cwd=CORPUS)
    assert proc.returncode == 1
    assert proc.stdout == (
        "visibility-over-maximum.yaml:8:44: spec.queues.workflow-requests.visibilityTimeout: "
        "50000 is greater than the maximum of 43200 (12h)\n")
    assert proc.stderr == "visibility-over-maximum.yaml: 1 error(s)\n"


def test_missing_file_is_an_io_error() -> None:
    proc = run_fbc_process("validate", "-f", "/nonexistent/flowbuilder.yaml")
    assert proc.returncode == 2
    assert proc.stderr == "fbc: /nonexistent/flowbuilder.yaml: No such file or directory\n"


def test_directory_is_an_io_error(tmp_path: Path) -> None:
    result = run_fbc("validate", "-f", str(tmp_path))
    assert result.exit_code == 2


def test_unknown_profile_and_bad_env_are_usage_errors() -> None:
    spec = str(REPO / "flowbuilder.yaml")
    result = run_fbc("validate", "-f", spec, "--profile", "cheap")
    assert result.exit_code == 2
    assert result.stderr == "fbc: unknown profile 'cheap': use one of standard, ultra or a path to a file\n"
    result = run_fbc("validate", "-f", spec, "--env", "Prod!")
    assert result.exit_code == 2


def test_unknown_flag_is_a_usage_error() -> None:
    assert run_fbc("validate", "--formt", "json").exit_code == 2


def test_github_format_prints_annotations() -> None:
    result = run_fbc("validate", "-f", "unknown-service-field.yaml", "--format", "github", cwd=CORPUS)
    assert result.exit_code == 1
    assert result.stdout.splitlines() == [
        "::error file=unknown-service-field.yaml,line=8,col=5,title=spec.services.api.port::required field is missing",
        "::error file=unknown-service-field.yaml,line=8,col=36,title=spec.services.api.prot::"
        "unknown field 'prot'; did you mean 'port'?",
    ]


def test_json_format_is_machine_readable() -> None:
    result = run_fbc("validate", "-f", "unused-queue-warning.yaml", "--format", "json", cwd=CORPUS)
    assert result.exit_code == 0
    assert json.loads(result.stdout) == {"valid": True, "diagnostics": [{
        "file": "unused-queue-warning.yaml", "line": 9, "column": 5, "path": "spec.queues.reports",
        "severity": "warning", "message": "no worker consumes this queue; messages will wait until they expire"}]}


def test_syntax_error_in_json_format() -> None:
    result = run_fbc("validate", "-f", "tab-indent.yaml", "--format", "json", cwd=CORPUS)
    assert result.exit_code == 1
    assert json.loads(result.stdout)["diagnostics"][0]["line"] == 8


def test_validate_imports_no_aws_libraries() -> None:
    code = ("import sys\nfrom flowbuilder.compiler.cli import main\nsys.argv=['fbc','validate','-f',sys.argv[1]]\n"
            "try:\n    main()\nexcept SystemExit:\n    pass\n"
            "bad=[m for m in sys.modules if m.split('.')[0] in ('boto3','botocore','troposphere','jsonschema')]\n"
            "print(','.join(bad))")
    proc = subprocess.run([sys.executable, "-c", code, str(REPO / "flowbuilder.yaml")], capture_output=True,
                          text=True, timeout=60)
    assert proc.stdout.strip() == ""


def test_internal_errors_print_one_line_not_a_traceback(monkeypatch: pytest.MonkeyPatch) -> None:
    env = {**os.environ, "FBC_TEST_CRASH": "1"}
    code = ("import flowbuilder.compiler.validate as v\n"
            "def boom(*a, **k):\n    raise KeyError('boom')\n"
            "v.validate_file = boom\nimport sys\nsys.argv=['fbc','validate']\n"
            "from flowbuilder.compiler.cli import main\nmain()")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=60)
    assert proc.returncode == 3
    assert "Traceback" not in proc.stderr
    assert proc.stderr.startswith("fbc: internal error: KeyError: 'boom'")


def test_schema_output_is_written_atomically(tmp_path: Path) -> None:
    out = tmp_path / "deep" / "schema.json"
    result = run_fbc("schema", "-o", str(out))
    assert result.exit_code == 0
    assert json.loads(out.read_text("utf-8"))["title"] == "Flow Builder application (flowbuilder.yaml)"
    assert [p.name for p in out.parent.iterdir()] == ["schema.json"]  # no temporary file left behind


REFUSED = ClientError({"Error": {"Code": "ValidationError", "Message": "Template format error"}}, "CreateStack")


@pytest.mark.parametrize(("error", "failed", "expected"), [
    (OSError("spec.yaml: No such file or directory"), 1, (2, "fbc: spec.yaml: No such file or directory\n")),
    (ValueError("first line\nsecond line"), 1, (2, "fbc: first line\n")),  # one line, always
    (REFUSED, 1, (1, "fbc: AWS: ValidationError: Template format error\n")),
    (REFUSED, 2, (2, "fbc: AWS: ValidationError: Template format error\n")),  # diff: 1 means differences
    (KeyError("bug"), 1, None),  # a bug is main's to report (internal error, exit 3)
    (SetupError("no AWS credentials"), 1, (2, "fbc: no AWS credentials\n")),  # the environment, not the deploy
    (ClientError({"Error": {"Code": "ExpiredToken", "Message": "expired"}}, "DescribeStacks"), 1,
     (2, "fbc: AWS: ExpiredToken: expired\n")),
])
def test_one_error_mapper_for_every_verb(error: Exception, failed: int, expected: tuple[int, str] | None) -> None:
    @click.command()
    def verb() -> None:
        with reported(failed=failed):
            raise error

    result = CliRunner().invoke(verb, [])
    if expected is None:
        assert isinstance(result.exception, KeyError)
    else:
        assert (result.exit_code, result.stderr) == expected
