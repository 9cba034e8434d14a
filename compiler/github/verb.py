"""`fbc comment`: post `fbc diff --format markdown`'s body as the pull request's one Flow Builder comment and set
the step's outputs. Every option defaults from what GitHub Actions puts in the environment."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import click

from ..cli.common import EXIT_USAGE, fail


@click.command()
@click.option("--body-file", required=True, type=click.Path(dir_okay=False),
              help="The comment body: fbc diff --format markdown's output.")
@click.option("--repo", metavar="OWNER/NAME", help="The repository (default: $GITHUB_REPOSITORY).")
@click.option("--pr", type=click.IntRange(1), metavar="N",
              help="The pull request (default: pull_request.number of $GITHUB_EVENT_PATH's event).")
@click.option("--token-env", default="GITHUB_TOKEN", show_default=True, metavar="NAME",
              help="The environment variable that holds the token (the token is never an argument).")
@click.option("--api-url", metavar="URL", help="GitHub's REST API (default: $GITHUB_API_URL, else api.github.com).")
@click.option("--author", metavar="LOGIN",
              help="The login the token writes as, to find the comment again: a GitHub App installation token's "
                   "<app-slug>[bot] (default: the token's user, from GET /user, else github-actions[bot]).")
@click.option("--post/--no-post", default=True, show_default=True,
              help="--no-post: only check the body and set the outputs (not a pull request; comment: false).")
@click.option("--github-output", type=click.Path(dir_okay=False), metavar="PATH",
              help="Append has-changes, risky and cost-delta here (default: $GITHUB_OUTPUT, when set).")
def comment(body_file: str, repo: str | None, pr: int | None, token_env: str, api_url: str | None,
            author: str | None, post: bool, github_output: str | None) -> None:
    """Create or update the pull request's Flow Builder comment (found by the body's hidden marker) and print
    the outputs has-changes, risky and cost-delta (also to $GITHUB_OUTPUT)."""
    from .api import GitHub, GitHubError
    from .comment import LOGIN, parse_body, write_outputs
    from .comment import post as post_comment

    if author is not None and not LOGIN.fullmatch(author):
        fail(f"--author {author!r} is not a GitHub login (a user's, or an app's <app-slug>[bot])")
    try:
        body = parse_body(Path(body_file).read_text("utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        fail(f"{body_file}: {exc}" if not isinstance(exc, OSError) else f"{body_file}: {exc.strerror or exc}")
    if post:
        where = _repo(repo)
        number = pr or _event_pr()
        token = os.environ.get(token_env, "")
        if not token:
            fail(f"no token: ${token_env} is empty (in a workflow: env: {{{token_env}: ${{{{ github.token }}}}}})")
        url = api_url or os.environ.get("GITHUB_API_URL") or "https://api.github.com"
        try:
            with GitHub(url, token) as github:
                done = post_comment(github, where, number, body, author)
        except GitHubError as exc:
            fail(str(exc))
        click.echo(f"{done.action} comment {done.url or done.id} on {where}#{number}", err=True)
    output = github_output or os.environ.get("GITHUB_OUTPUT")
    if output:
        try:
            write_outputs(Path(output), body.summary)
        except OSError as exc:
            fail(f"{output}: {exc.strerror or exc}")
    for name, value in body.summary.outputs().items():
        click.echo(f"{name}={value}")


def _repo(given: str | None) -> str:
    repo = given or os.environ.get("GITHUB_REPOSITORY", "")
    if not repo:
        fail("no repository: pass --repo OWNER/NAME (in Actions, $GITHUB_REPOSITORY names it)")
    if not re.fullmatch(r"[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+", repo):
        fail(f"--repo {repo!r} is not OWNER/NAME")
    return repo


def _event_pr() -> int:
    """The pull request of the event that started the workflow (pull_request and pull_request_target)."""
    path = os.environ.get("GITHUB_EVENT_PATH")
    if not path:
        fail("no pull request: pass --pr N (in Actions, a pull_request event's payload names it)")
    try:
        event = json.loads(Path(path).read_text("utf-8"))
    except (OSError, ValueError) as exc:
        fail(f"$GITHUB_EVENT_PATH {path}: {exc}", EXIT_USAGE)
    number = (event.get("pull_request") or {}).get("number") if isinstance(event, dict) else None
    if not isinstance(number, int):
        fail(f"no pull request: the event ({os.environ.get('GITHUB_EVENT_NAME', 'unknown')}) is not a pull "
             "request's; pass --pr N, or --no-post")
    return number
