"""Issue 14, item 5: an endpoint that never answers, or throttles every call, is waited on for a bounded time,
aloud. One retry layer (botocore's standard mode, configured once), bounded connect and read timeouts, a
"retrying (..., attempt n)" line on stderr for each retry, and a deadline per verb (--deadline) that exits 2.
Local endpoints stand in for AWS; timeouts are shrunk through FBC_READ_TIMEOUT and AWS_MAX_ATTEMPTS."""

from __future__ import annotations

import os
import re
import subprocess
import time
from typing import Any

import pytest
from deploy_fakes import FBC, silent, throttling
from test_deploy import MINIMAL

from flowbuilder.compiler.deploy.aws import connect
from flowbuilder.compiler.deploy.transport import CONNECT_TIMEOUT, MAX_ATTEMPTS, READ_TIMEOUT, SetupError


def env(url: str, **more: str) -> dict[str, str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "FBC_"))}
    return base | {"AWS_ENDPOINT_URL": url, "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                   "AWS_CONFIG_FILE": os.devnull, "AWS_SHARED_CREDENTIALS_FILE": os.devnull} | more


def timed(environment: dict[str, str], *args: str, timeout: float = 60) -> tuple[float, int, str, str]:
    started = time.monotonic()
    done = subprocess.run([*FBC, *args], env=environment, capture_output=True, text=True, timeout=timeout)
    return time.monotonic() - started, done.returncode, done.stdout, done.stderr


def test_a_silent_endpoint_is_retried_aloud_and_given_up() -> None:
    with silent() as url:
        took, code, out, err = timed(env(url, FBC_READ_TIMEOUT="0.5", AWS_MAX_ATTEMPTS="3"),
                                     "diff", "-f", str(MINIMAL), "--profile", "ultra")
    lines = err.splitlines()
    assert code == 2, err
    assert lines[:2] == ["fbc: DescribeStacks: retrying (no answer within 0.5s, attempt 2)",
                         "fbc: DescribeStacks: retrying (no answer within 0.5s, attempt 3)"]
    assert re.fullmatch(r'fbc: Read timeout on endpoint URL: "http://127\.0\.0\.1:\d+/"', lines[-1]), err
    assert len(lines) == 3 and out == ""
    assert took < 30  # 3 x 0.5 s and two short back-offs, besides compiling the spec


def test_throttling_on_every_call_is_said_and_bounded() -> None:
    with throttling() as (url, calls):
        took, code, _, err = timed(env(url, AWS_MAX_ATTEMPTS="3"), "status", "-f", str(MINIMAL))
    assert (code, err.splitlines()) == (2, ["fbc: DescribeStacks: retrying (throttled, attempt 2)",
                                            "fbc: DescribeStacks: retrying (throttled, attempt 3)",
                                            "fbc: AWS: Throttling: Rate exceeded"])
    assert len(calls) == 3  # one retry layer: not fbc's retries around botocore's
    assert took < 20


def test_the_deadline_stops_a_call_that_hangs() -> None:
    with silent() as url:
        took, code, out, err = timed(env(url, FBC_READ_TIMEOUT="60"), "status", "-f", str(MINIMAL),
                                     "--deadline", "2s")
    assert (code, out, err) == (2, "", "fbc: gave up after 2s (--deadline): nothing was changed in AWS\n")
    assert took < 15


def test_the_deadline_is_a_duration() -> None:
    _, code, _, err = timed(env("http://127.0.0.1:9"), "status", "-f", str(MINIMAL), "--deadline", "soon")
    assert code == 2 and "Invalid value for '--deadline': use seconds or '30s', '15m', '12h', '4d'" in err


def clients_config(monkeypatch: pytest.MonkeyPatch, **variables: str) -> Any:
    for name in [n for n in os.environ if n.startswith(("AWS_", "FBC_"))]:
        monkeypatch.delenv(name)
    for name, value in {"AWS_ACCESS_KEY_ID": "x", "AWS_SECRET_ACCESS_KEY": "x", "AWS_CONFIG_FILE": os.devnull,
                        "AWS_SHARED_CREDENTIALS_FILE": os.devnull, **variables}.items():
        monkeypatch.setenv(name, value)
    return connect("eu-west-1").client("cloudformation").meta.config


def test_every_client_gets_bounded_timeouts_and_one_retry_layer(monkeypatch: pytest.MonkeyPatch) -> None:
    config = clients_config(monkeypatch)
    assert (config.connect_timeout, config.read_timeout) == (CONNECT_TIMEOUT, READ_TIMEOUT)
    assert config.retries == {"mode": "standard", "total_max_attempts": MAX_ATTEMPTS}
    # AWS's own settings are honoured as by every AWS tool; botocore's legacy mode is not used.
    config = clients_config(monkeypatch, AWS_MAX_ATTEMPTS="2", AWS_RETRY_MODE="adaptive", FBC_READ_TIMEOUT="1.5")
    assert (config.read_timeout, config.retries) == (1.5, {"mode": "adaptive", "total_max_attempts": 2})
    assert clients_config(monkeypatch, AWS_RETRY_MODE="legacy").retries["mode"] == "standard"
    with pytest.raises(SetupError, match=r"^FBC_CONNECT_TIMEOUT='soon': expected a number of seconds over 0$"):
        clients_config(monkeypatch, FBC_CONNECT_TIMEOUT="soon")
