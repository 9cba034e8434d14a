"""`fbc comment` against a GitHub on 127.0.0.1 (tests/github_fake.py) over real HTTP: one comment per stack,
created once and then updated, never another user's; rate limits waited out; one-line errors; the outputs."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from github_fake import BOT, Failure, State, fake_github

from conftest import run_fbc_process
from flowbuilder.compiler.cli import cli
from flowbuilder.compiler.github.api import GitHub, GitHubError

REPO_NAME = "acme/app"
TOKEN = "ghs_workflowtoken0123456789"  # the workflow's token: GET /user is 403 for it
PAT = "ghp_alicetoken0123456789"
APP = "ghs_installationtoken0123456789"  # a GitHub App installation token: GET /user is 403, it writes as my-app[bot]
MARKER = "<!-- flowbuilder:diff stack=flow-builder-dev -->"


def body(cost: str | None = "+12.34", *, changes: bool = True, risky: bool = False, title: str = "plan") -> str:
    summary = json.dumps({"cost_delta": cost, "exit": int(changes), "has_changes": changes, "risky": risky},
                         sort_keys=True)
    return f"{MARKER}\n## fbc diff: {title}\n<!-- flowbuilder:summary {summary} -->\n\nbody\n"


@pytest.fixture
def state() -> State:
    return State(tokens={TOKEN: None, PAT: "alice", APP: None}, bots={APP: "my-app[bot]"}, repos={REPO_NAME},
                 page_size=2)


def comment(tmp_path: Path, api: str, text: str, *args: str, token: str = TOKEN) -> tuple[Result, Path]:
    """fbc comment as a workflow step runs it: everything from the Actions environment."""
    body_file, event, output = tmp_path / "body.md", tmp_path / "event.json", tmp_path / "github_output"
    body_file.write_text(text, "utf-8")
    event.write_text(json.dumps({"action": "synchronize", "pull_request": {"number": 7}}), "utf-8")
    env = {"GITHUB_REPOSITORY": REPO_NAME, "GITHUB_EVENT_PATH": str(event), "GITHUB_API_URL": api,
           "GITHUB_TOKEN": token, "GITHUB_OUTPUT": str(output), "GITHUB_EVENT_NAME": "pull_request"}
    result = CliRunner().invoke(cli, ["comment", "--body-file", str(body_file), *args], env=env,
                                catch_exceptions=False)
    return result, output


def test_first_run_creates_second_updates_the_same_comment(state: State, tmp_path: Path) -> None:
    # Other comments first (three pages of two), one of them another user's copy of our marker.
    for n in range(3):
        state.add(REPO_NAME, 7, "bob", f"looks good {n}")
    theirs = state.add(REPO_NAME, 7, "mallory", body(title="not fbc's"))
    with fake_github(state) as api:
        first, output = comment(tmp_path, api, body(title="first"))
        assert first.exit_code == 0, first.stderr
        assert "created comment https://github.test/acme/app/pull/7#issuecomment-" in first.stderr
        second, _ = comment(tmp_path, api, body("-3.00", changes=True, risky=True, title="second"))
        assert second.exit_code == 0, second.stderr
        assert "updated comment" in second.stderr
    ours = [c for c in state.comments[(REPO_NAME, 7)] if c["body"].startswith(MARKER) and c["user"]["login"] == BOT]
    assert len(ours) == 1 and "## fbc diff: second" in ours[0]["body"]
    assert theirs["body"] == body(title="not fbc's")  # the same marker, but not ours: untouched
    assert len(state.comments[(REPO_NAME, 7)]) == 5
    pages = [path for method, path in state.log if method == "GET" and "/comments" in path]
    assert any("page=3" in p for p in pages)  # the listing followed the Link header
    assert [m for m, p in state.log if m in ("POST", "PATCH")] == ["POST", "PATCH"]
    # Both runs appended their outputs; the step's last value wins in Actions.
    assert output.read_text("utf-8").splitlines() == [
        "has-changes=true", "risky=false", "cost-delta=+12.34",
        "has-changes=true", "risky=true", "cost-delta=-3.00"]
    assert second.stdout.splitlines() == ["has-changes=true", "risky=true", "cost-delta=-3.00"]


def test_a_user_token_updates_its_users_comment(state: State, tmp_path: Path) -> None:
    mine = state.add(REPO_NAME, 7, "alice", body(title="old"))
    with fake_github(state) as api:
        result, _ = comment(tmp_path, api, body(title="new"), token=PAT)
    assert result.exit_code == 0, result.stderr
    assert "## fbc diff: new" in mine["body"] and len(state.comments[(REPO_NAME, 7)]) == 1


def test_an_app_token_with_author_updates_its_apps_comment(state: State, tmp_path: Path) -> None:
    """An installation token's comments are <app-slug>[bot]'s, which GET /user cannot tell (403): --author (the
    action's comment-author) names it, and the app's comment is updated instead of a new one each run."""
    actions = state.add(REPO_NAME, 7, BOT, body(title="the workflow token's"))
    with fake_github(state) as api:
        first, _ = comment(tmp_path, api, body(title="first"), "--author", "my-app[bot]", token=APP)
        second, _ = comment(tmp_path, api, body(title="second"), "--author", "my-app[bot]", token=APP)
    assert first.exit_code == 0 and second.exit_code == 0, first.stderr + second.stderr
    assert "created comment" in first.stderr and "updated comment" in second.stderr
    apps = [c for c in state.comments[(REPO_NAME, 7)] if c["user"]["login"] == "my-app[bot]"]
    assert len(apps) == 1 and "## fbc diff: second" in apps[0]["body"]
    assert actions["body"] == body(title="the workflow token's")  # the same marker, another author: untouched
    assert ("GET", "/user") not in state.log  # told, not asked
    assert [m for m, _ in state.log if m != "GET"] == ["POST", "PATCH"]


def test_two_runs_that_both_created_leave_the_oldest_comment(state: State, tmp_path: Path) -> None:
    """Two runs listed before either created, so both created: each keeps the oldest (with its own body) and
    deletes the newer, whichever of the two it is."""
    state.before_create.append((BOT, body(title="the other run's")))
    with fake_github(state) as api:
        result, _ = comment(tmp_path, api, body(title="this run's"))
    assert result.exit_code == 0, result.stderr
    [kept] = state.comments[(REPO_NAME, 7)]
    assert kept["id"] == 1001 and "## fbc diff: this run's" in kept["body"]  # the other run's, older, updated
    assert "updated comment https://github.test/acme/app/pull/7#issuecomment-1001" in result.stderr
    assert [(m, p) for m, p in state.log if m != "GET"] == [
        ("POST", "/repos/acme/app/issues/7/comments"), ("PATCH", "/repos/acme/app/issues/comments/1001"),
        ("DELETE", "/repos/acme/app/issues/comments/1002")]

    state.comments.clear()
    state.log.clear()
    state.after_create.append((BOT, body(title="the other run's")))  # this time the other run's is newer
    with fake_github(state) as api:
        again, _ = comment(tmp_path, api, body(title="this run's"))
    assert again.exit_code == 0, again.stderr
    [kept] = state.comments[(REPO_NAME, 7)]
    assert kept["id"] == 1003 and "## fbc diff: this run's" in kept["body"] and "created comment" in again.stderr
    assert [(m, p) for m, p in state.log if m != "GET"] == [
        ("POST", "/repos/acme/app/issues/7/comments"), ("DELETE", "/repos/acme/app/issues/comments/1004")]


def test_rate_limit_is_waited_out(state: State, tmp_path: Path) -> None:
    state.failures.append(Failure(403, "GET", headers={"Retry-After": "1"},
                                  message="You have exceeded a secondary rate limit"))
    with fake_github(state) as api:
        started = time.monotonic()
        result, _ = comment(tmp_path, api, body())
    assert result.exit_code == 0, result.stderr
    assert time.monotonic() - started >= 1.0
    assert len(state.comments[(REPO_NAME, 7)]) == 1


def test_a_create_that_failed_after_it_happened_is_not_repeated(state: State, tmp_path: Path) -> None:
    state.failures.append(Failure(502, "POST", after=True, message="Bad Gateway"))
    with fake_github(state) as api:
        result, _ = comment(tmp_path, api, body())
    assert result.exit_code == 0, result.stderr
    assert "updated comment" in result.stderr  # found on the second look, so updated, not created twice
    assert len(state.comments[(REPO_NAME, 7)]) == 1


def test_bad_token_is_one_line_and_never_printed(state: State, tmp_path: Path) -> None:
    with fake_github(state) as api:
        (tmp_path / "body.md").write_text(body(), "utf-8")
        event = tmp_path / "event.json"
        event.write_text(json.dumps({"pull_request": {"number": 7}}), "utf-8")
        secret = "ghs_notavalidtoken_S3CRET"
        proc = run_fbc_process("comment", "--body-file", str(tmp_path / "body.md"), "--token-env", "MY_TOKEN",
                               env={"PATH": "/usr/bin:/bin", "MY_TOKEN": secret, "GITHUB_API_URL": api,
                                    "GITHUB_REPOSITORY": REPO_NAME, "GITHUB_EVENT_PATH": str(event)})
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        "fbc: GitHub answered 401 Bad credentials (GET /user): the token is missing, wrong or expired"]
    assert secret not in proc.stdout + proc.stderr


@pytest.mark.parametrize(("args", "expected"), [
    (["--pr", "8", "--repo", "acme/other"],
     "fbc: GitHub answered 404 Not Found (GET /repos/acme/other/issues/8/comments): no such repository or pull "
     "request, or the token cannot see it"),
    (["--repo", "not a repo"], "fbc: --repo 'not a repo' is not OWNER/NAME"),
    (["--author", "my app"], "fbc: --author 'my app' is not a GitHub login (a user's, or an app's <app-slug>[bot])"),
])
def test_usage_and_not_found_are_one_line(state: State, tmp_path: Path, args: list[str], expected: str) -> None:
    with fake_github(state) as api:
        result, _ = comment(tmp_path, api, body(), *args)
    assert result.exit_code == 2
    assert result.stderr.strip().splitlines() == [expected]


def test_a_body_fbc_did_not_write_is_refused_before_any_request(state: State, tmp_path: Path) -> None:
    with fake_github(state) as api:
        result, output = comment(tmp_path, api, "## my own notes\n")
        missing, _ = comment(tmp_path, api, f"{MARKER}\nno summary\n")
    assert result.exit_code == 2 and missing.exit_code == 2
    assert result.stderr.startswith("fbc: ") and len(result.stderr.strip().splitlines()) == 1
    assert "has 0 <!-- flowbuilder:summary" in missing.stderr
    assert state.log == [] and not output.exists()


def test_no_post_sets_the_outputs_only(state: State, tmp_path: Path) -> None:
    with fake_github(state) as api:
        result, output = comment(tmp_path, api, body(None, changes=False), "--no-post")
    assert result.exit_code == 0, result.stderr
    assert output.read_text("utf-8") == "has-changes=false\nrisky=false\ncost-delta=\n"
    assert state.log == []


def test_not_a_pull_request_says_so(state: State, tmp_path: Path) -> None:
    (tmp_path / "body.md").write_text(body(), "utf-8")
    (tmp_path / "event.json").write_text(json.dumps({"ref": "refs/heads/main"}), "utf-8")
    result = CliRunner().invoke(cli, ["comment", "--body-file", str(tmp_path / "body.md")], env={
        "GITHUB_REPOSITORY": REPO_NAME, "GITHUB_EVENT_PATH": str(tmp_path / "event.json"),
        "GITHUB_EVENT_NAME": "push", "GITHUB_TOKEN": TOKEN})
    assert result.exit_code == 2
    assert result.stderr == ("fbc: no pull request: the event (push) is not a pull request's; pass --pr N, "
                             "or --no-post\n")


def test_server_errors_are_retried_then_reported(state: State) -> None:
    state.failures.extend(Failure(503, "GET", message="Service Unavailable") for _ in range(4))
    waits: list[float] = []
    with fake_github(state) as api, GitHub(api, TOKEN, sleep=waits.append) as github:
        with pytest.raises(GitHubError, match=r"^GitHub answered 503 Service Unavailable "
                                              r"\(GET /repos/acme/app/issues/7/comments\), 4 attempts$"):
            list(github.pages("/repos/acme/app/issues/7/comments"))
        state.failures.extend(Failure(500, "GET") for _ in range(2))
        assert list(github.pages("/repos/acme/app/issues/7/comments")) == []  # the third attempt answers
    assert waits == [2.0, 4.0, 8.0, 2.0, 4.0]


def test_a_link_to_another_host_does_not_get_the_token(state: State) -> None:
    with fake_github(state) as api, GitHub(api, TOKEN) as github, pytest.raises(
            GitHubError, match="GitHub sent a link outside"):
        github.request("GET", "http://198.51.100.1/steal")


def test_a_long_rate_limit_is_reported_not_slept_through(state: State, tmp_path: Path) -> None:
    state.failures.append(Failure(429, headers={"Retry-After": "3600"}, message="API rate limit exceeded"))
    with fake_github(state) as api:
        result, _ = comment(tmp_path, api, body())
    assert result.exit_code == 2
    assert result.stderr == "fbc: GitHub's rate limit: API rate limit exceeded; it resets in 3600s (GET /user)\n"


def test_a_body_over_githubs_limit_is_refused(state: State, tmp_path: Path) -> None:
    with fake_github(state) as api:
        result, _ = comment(tmp_path, api, body() + "x" * 65536)
    assert result.exit_code == 2 and "GitHub takes at most 65536" in result.stderr
    assert state.log == []
