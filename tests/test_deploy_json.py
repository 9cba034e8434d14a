"""Issue 14, item 7: with --format json, every exit path of fbc diff prints one JSON object on stdout, so
`fbc diff --format json | jq` always has something to read: the diff (exit 0 or 1), or {"error": ..., "exit": n}
(usage, input and environment errors exit 2; a stopped run 130 or 143)."""

from __future__ import annotations

import json
import os
import re
import signal
import time
from pathlib import Path
from typing import Any

import pytest
from deploy_fakes import silent, start, wait
from test_deploy import MINIMAL, clean_moto

from conftest import CORPUS, free_port, run_fbc

DIFF = ["diff", "-f", str(MINIMAL), "--profile", "ultra", "--format", "json"]


@pytest.fixture
def aws(moto_server: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """moto's environment, in this process (fbc runs in-process: CliRunner)."""
    env = clean_moto(moto_server, tmp_path)
    for name in [n for n in os.environ if n.startswith("AWS_")]:
        monkeypatch.delenv(name)
    for name, value in env.items():
        if name.startswith("AWS_"):
            monkeypatch.setenv(name, value)
    return env


def one_object(stdout: str) -> dict[str, Any]:
    shown = json.loads(stdout)  # the whole of stdout is one object
    assert isinstance(shown, dict)
    return shown


def test_a_stack_not_deployed_is_said_in_both_formats(aws: dict[str, str]) -> None:
    result = run_fbc(*DIFF)
    assert result.exit_code == 1  # differences: everything is new
    shown = one_object(result.stdout)
    assert shown["deployed"] is False and len(shown["resources"]) == 23
    assert result.stderr == "tiny-dev: not deployed in eu-west-1; the whole template is new\n"


def _write(tmp_path: Path, text: str) -> str:
    path = tmp_path / "old.json"
    path.write_text(text, "utf-8")
    return str(path)


@pytest.mark.parametrize(("case", "expected"), [
    ("no credentials", r"^no AWS credentials: set AWS_PROFILE, or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"),
    ("wrong region", r"^AWS_REGION is us-east-1, but the spec deploys to eu-west-1: unset AWS_REGION or change "),
    ("connection refused", r'^Could not connect to the endpoint URL: "http://127\.0\.0\.1:\d+/"$'),
    ("invalid spec", r"^cron-both-days\.yaml: not compared$"),
    ("missing --against", r"^--against \S+/nope\.json: No such file or directory$"),
    ("--against []", r"^--against \S+: not a CloudFormation template: a list, not a mapping of sections$"),
    ("bad --param", r"^Invalid value for --param: 'VpcId': expected NAME=VALUE$"),
    ("unknown option", r"^No such option '--formt'"),
])
def test_every_error_is_one_json_object(aws: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                        case: str, expected: str) -> None:
    args, cwd = list(DIFF), None
    if case == "no credentials":
        monkeypatch.delenv("AWS_ACCESS_KEY_ID")
        monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    elif case == "wrong region":
        monkeypatch.setenv("AWS_REGION", "us-east-1")
    elif case == "connection refused":
        monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{free_port()}")
        monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
    elif case == "invalid spec":
        args[2], cwd = "cron-both-days.yaml", CORPUS
    elif case == "missing --against":
        args += ["--against", str(tmp_path / "nope.json")]
    elif case == "--against []":
        args += ["--against", _write(tmp_path, "[]")]
    elif case == "bad --param":
        args += ["--param", "VpcId"]
    elif case == "unknown option":
        args += ["--formt", "json"]
    result = run_fbc(*args, cwd=cwd)
    shown = one_object(result.stdout)
    assert shown["exit"] == result.exit_code == 2, result.stderr
    assert set(shown) <= {"error", "exit", "diagnostics"}
    assert re.search(expected, shown["error"]), shown
    if case == "invalid spec":
        assert shown["diagnostics"][0]["file"] == "cron-both-days.yaml"


def test_a_passed_deadline_and_an_interruption_are_json_too() -> None:
    with silent() as url:
        env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")} | {
            "AWS_ENDPOINT_URL": url, "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}
        late, _ = start(env, *DIFF, "--deadline", "5s")
        stopped, _ = start(env, *DIFF)
        time.sleep(3)  # compiled, and waiting on the endpoint
        stopped.send_signal(signal.SIGINT)
        results = [wait(late), wait(stopped)]
    for (code, out, err), why in zip(results, ["gave up after 5s (--deadline)", "interrupted (SIGINT)"], strict=True):
        assert one_object(out) == {"error": f"{why}: nothing was changed in AWS", "exit": code}, err
        assert code == (2 if "deadline" in why else 130)
