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
        assert result.exception is error
    else:
        assert (result.exit_code, result.stderr) == expected


# --- issue 14, items 8 and 11: exit codes and the small things -----------------------------------------------

MINIMAL = REPO / "tests" / "specs" / "minimal.yaml"
OFFLINE = ["diff", "-f", str(MINIMAL), "--profile", "ultra", "--against"]


@pytest.mark.parametrize(("text", "problem"), [
    ("[]", "a list, not a mapping of sections"),
    ('{"Resources": []}', "no Resources mapping"),
    ('{"Resources": {"Queue": {"Properties": {}}}}', "resource Queue has no Type"),
    ('{"Resources": {"Queue": {"Type": "AWS::SQS::Queue", "Properties": "x"}}}',
     "resource Queue's Properties is not a mapping"),
    ('{"Resources": {}, "Outputs": []}', "Outputs is not a mapping"),
    ("Resources: [", None),
])
def test_against_a_file_that_is_no_template_is_invalid_input(tmp_path: Path, text: str, problem: str | None) -> None:
    old = tmp_path / "old.json"
    old.write_text(text, "utf-8")
    result = run_fbc(*OFFLINE, str(old))
    assert result.exit_code == 2, result.stderr  # was 1 (differs) for [], 3 (internal error) for the others
    if problem:
        assert result.stderr == f"fbc: --against {old}: not a CloudFormation template: {problem}\n"
    else:
        assert result.stderr.startswith(f"fbc: --against {old}: not JSON or YAML (")


def test_against_a_missing_file_is_one_line(tmp_path: Path) -> None:
    proc = run_fbc_process(*OFFLINE, "missing.json", cwd=tmp_path)  # cfn-lint's own log line came first
    assert (proc.returncode, proc.stderr) == (2, "fbc: --against missing.json: No such file or directory\n")


def _aws_env(monkeypatch: pytest.MonkeyPatch, **variables: str) -> None:
    for name in [n for n in os.environ if n.startswith("AWS_")]:
        monkeypatch.delenv(name)
    for name, value in {"AWS_CONFIG_FILE": os.devnull, "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
                        "AWS_ENDPOINT_URL": "http://127.0.0.1:9", **variables}.items():
        monkeypatch.setenv(name, value)


@pytest.mark.parametrize("verb", [["status"], ["destroy", "--yes"], ["apply", "--profile", "ultra"]])
def test_credentials_and_region_are_environment_errors(monkeypatch: pytest.MonkeyPatch, verb: list[str]) -> None:
    _aws_env(monkeypatch)
    missing = run_fbc(*verb, "-f", str(MINIMAL))
    assert (missing.exit_code, missing.stderr.splitlines()[-1]) == (
        2, "fbc: no AWS credentials: set AWS_PROFILE, or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or run where a "
           "role is available")  # was 1, as a failed deploy
    _aws_env(monkeypatch, AWS_ACCESS_KEY_ID="x", AWS_SECRET_ACCESS_KEY="x", AWS_DEFAULT_REGION="us-east-1")
    wrong = run_fbc(*verb, "-f", str(MINIMAL))
    assert (wrong.exit_code, wrong.stderr) == (2, "fbc: AWS_DEFAULT_REGION is us-east-1, but the spec deploys to "
                                                  "eu-west-1: unset AWS_DEFAULT_REGION or change spec.region\n")


def test_status_shows_at_least_one_event() -> None:
    result = run_fbc("status", "-f", str(MINIMAL), "--events", "0")  # showed every event
    assert result.exit_code == 2
    assert "Invalid value for '--events': 0 is not in the range x>=1." in result.stderr


@pytest.mark.parametrize(("term", "coloured"), [("dumb", False), ("xterm-256color", True)])
def test_colour_only_on_a_terminal_that_has_it(tmp_path: Path, term: str, coloured: bool) -> None:
    from deploy_fakes import drain, start

    old = tmp_path / "old.json"
    old.write_text('{"Resources": {}}', "utf-8")
    env = {k: v for k, v in os.environ.items() if k != "NO_COLOR"} | {"TERM": term}
    proc, terminal = start(env, *OFFLINE, str(old), terminal=True)
    assert terminal is not None and proc.wait(60) == 1
    assert ("\x1b[" in drain(terminal).decode()) is coloured


def test_a_reader_that_goes_away_ends_fbc_quietly(moto_server: str, tmp_path: Path) -> None:
    from deploy_fakes import FBC, Proxy
    from test_deploy import clean_moto, client

    env = clean_moto(moto_server, tmp_path)
    client(env, "cloudformation").create_stack(StackName="tiny-dev", TemplateBody=json.dumps(
        {"Resources": {"Queue": {"Type": "AWS::SQS::Queue"}}}))
    proxy = Proxy(env["AWS_ENDPOINT_URL"], hold="DescribeStackEvents")
    try:  # fbc status | head -1: the reader is gone once the first lines are out
        proc = subprocess.Popen([*FBC, "status", "-f", str(MINIMAL)], env={**env, "AWS_ENDPOINT_URL": proxy.url},
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        assert proc.stdout is not None and proc.stdout.readline() == b"tiny-dev: CREATE_COMPLETE\n"
        assert proxy.held.wait(60)
        proc.stdout.close()
        proxy.release()
        _, err = proc.communicate(timeout=60)
    finally:
        proxy.close()
    assert (proc.returncode, err) == (141, b"")  # was "fbc: [Errno 32] Broken pipe", exit 2


@pytest.mark.parametrize("verb", ["validate", "cost"])
def test_spec_verbs_json_errors_are_one_object_too(verb: str) -> None:
    result = run_fbc(verb, "-f", "/nonexistent/flowbuilder.yaml", "--format", "json")
    assert result.exit_code == 2
    assert json.loads(result.stdout) == {"error": "/nonexistent/flowbuilder.yaml: No such file or directory", "exit": 2}
