"""Issue 14, item 4: a run stopped by Ctrl-C (SIGINT) or a CI cancel (SIGTERM) deletes the change sets it
created and did not execute (and the empty stack a first one made), says in one line what is left in AWS,
and exits 130 or 143. Real signals to a real fbc process against moto's server; a proxy holds the call fbc
is waiting on, so the signal comes while CloudFormation "computes" a change set or "deploys"."""

from __future__ import annotations

import os
import re
import signal
from pathlib import Path

import pytest
from deploy_fakes import Proxy, drain, read_until, silent, spec_with, start, wait
from test_deploy import MINIMAL, NETWORK, clean_moto, client, fbc

SPEC = ["--profile", "ultra", *NETWORK]
BIGGER = ("timeout: 5m}", "timeout: 5m, memory: 1024}")  # replaces the worker's task definition: asks first
DELETED = r"deleted change set fbc-\d{14}-[0-9a-f]{6} \(not executed\)"


@pytest.fixture
def aws(moto_server: str, tmp_path: Path) -> dict[str, str]:
    env = clean_moto(moto_server, tmp_path)
    return env


def deployed(env: dict[str, str]) -> None:
    created = fbc(env, "apply", "-f", str(MINIMAL), *SPEC, "--yes")
    assert created.returncode == 0, created.stderr


def change_sets(env: dict[str, str]) -> list[str]:
    """The change sets moto keeps (it lists the executed one of `deployed` too, as AWS would not)."""
    return [s["ChangeSetName"] for s in client(env, "cloudformation").list_change_sets(StackName="tiny-dev")[
        "Summaries"]]


def stopped_while_held(env: dict[str, str], number: signal.Signals, hold: str, *args: str, after: str | None = None,
                       busy: bool = False) -> tuple[int, str, str]:
    proxy = Proxy(env["AWS_ENDPOINT_URL"], hold, after, busy)
    try:
        proc, _ = start({**env, "AWS_ENDPOINT_URL": proxy.url}, *args)
        assert proxy.held.wait(120), f"fbc never called {hold}: {wait(proc)}"
        proc.send_signal(number)
        return wait(proc)
    finally:
        proxy.close()


def test_interrupted_diff_deletes_its_change_set(aws: dict[str, str], tmp_path: Path) -> None:
    deployed(aws)
    before = change_sets(aws)
    changed = spec_with(tmp_path, MINIMAL, *BIGGER)
    code, out, err = stopped_while_held(aws, signal.SIGINT, "DescribeChangeSet", "diff", "-f", str(changed), *SPEC)
    assert code == 130, err
    assert re.fullmatch(rf"fbc: interrupted \(SIGINT\): {DELETED}; tiny-dev is CREATE_COMPLETE \(unchanged\)",
                        err.splitlines()[-1]), err
    assert out == ""
    assert change_sets(aws) == before


def test_interrupted_create_leaves_no_empty_stack(aws: dict[str, str]) -> None:
    code, _, err = stopped_while_held(aws, signal.SIGTERM, "DescribeChangeSet", "apply", "-f", str(MINIMAL), *SPEC,
                                      "--yes")
    assert code == 143, err
    assert re.fullmatch(rf"fbc: interrupted \(SIGTERM\): {DELETED} and the empty stack tiny-dev it created",
                        err.splitlines()[-1]), err
    gone = fbc(aws, "status", "-f", str(MINIMAL))
    assert (gone.returncode, gone.stdout.strip()) == (1, "tiny-dev: not deployed")


def test_sigterm_while_following_says_cloudformation_goes_on(aws: dict[str, str], tmp_path: Path) -> None:
    deployed(aws)
    changed = spec_with(tmp_path, MINIMAL, *BIGGER)
    code, out, err = stopped_while_held(aws, signal.SIGTERM, "DescribeStackEvents", "apply", "-f", str(changed),
                                        *SPEC, "--yes", after="ExecuteChangeSet", busy=True)
    assert code == 143, err
    assert "Update tiny-dev: 1 change(s)" in out
    assert err.splitlines()[-1] == ("fbc: interrupted (SIGTERM): CloudFormation is still updating tiny-dev "
                                    "(UPDATE_IN_PROGRESS); fbc status follows it")


@pytest.mark.parametrize("key", ["ctrl-c", "ctrl-d"])
def test_the_confirmation_prompt_leaves_no_change_set(aws: dict[str, str], tmp_path: Path, key: str) -> None:
    deployed(aws)
    before = change_sets(aws)
    changed = spec_with(tmp_path, MINIMAL, *BIGGER)
    proc, terminal = start(aws, "apply", "-f", str(changed), *SPEC, terminal=True)
    assert terminal is not None
    shown = read_until(terminal, b"Deploy these changes? [y/N]: ")
    assert len(change_sets(aws)) == len(before) + 1  # the change set waits for the answer
    if key == "ctrl-c":
        proc.send_signal(signal.SIGINT)
    else:
        os.write(terminal, b"\x04")  # the end of input: the default answer, no
    code = proc.wait(120)
    last = (shown + drain(terminal)).decode().splitlines()[-1]
    if key == "ctrl-c":
        assert code == 130, last
        assert re.fullmatch(rf"fbc: interrupted \(SIGINT\): {DELETED}; tiny-dev is CREATE_COMPLETE \(unchanged\)",
                            last), last
    else:
        assert (code, last) == (1, "not deployed")
    assert change_sets(aws) == before


def test_interrupted_status_changed_nothing() -> None:
    with silent() as url:
        env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")} | {
            "AWS_ENDPOINT_URL": url, "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}
        proc, _ = start(env, "status", "-f", str(MINIMAL))
        with pytest.raises(Exception, match="timed out"):
            proc.wait(timeout=3)  # waiting on the endpoint
        proc.send_signal(signal.SIGINT)
        code, out, err = wait(proc)
    assert (code, out, err) == (130, "", "fbc: interrupted (SIGINT): nothing was changed in AWS\n")
