"""One pull-request comment per stack: `fbc diff --format markdown` writes a body whose first line is the hidden
marker `<!-- flowbuilder:diff stack=NAME -->` and which holds one `<!-- flowbuilder:summary {...} -->` line.
The first run creates the comment; later runs update the same one, found by that marker among the comments of
one author (the token's: `--author`, else GET /user's login, else github-actions[bot]), so nobody else's comment
is ever edited. Two runs that both created one (neither saw the other's) leave one: the oldest is kept."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .api import GitHub, GitHubError

MARKER = re.compile(r"<!-- flowbuilder:diff stack=[A-Za-z0-9-]+ -->")
SUMMARY = re.compile(r"^<!-- flowbuilder:summary (\{.*\}) -->$", re.M)
MAX_BODY = 65536  # GitHub refuses a longer comment body (characters)
ACTIONS_BOT = "github-actions[bot]"  # the workflow token's author, which GET /user cannot tell
LOGIN = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,38})(?:\[bot\])?")  # a user's or an app's bot login


@dataclass(frozen=True)
class Summary:
    has_changes: bool
    risky: bool
    cost_delta: str | None  # "+12.34", or None without --cost
    exit: int

    def outputs(self) -> dict[str, str]:
        """The action's outputs, as $GITHUB_OUTPUT takes them."""
        return {"has-changes": _bool(self.has_changes), "risky": _bool(self.risky),
                "cost-delta": self.cost_delta or ""}


@dataclass(frozen=True)
class Body:
    text: str
    marker: str
    summary: Summary


@dataclass(frozen=True)
class Posted:
    action: str  # created | updated
    id: int
    url: str


def parse_body(text: str) -> Body:
    """The body `fbc diff --format markdown` wrote, checked: its marker first, one summary line."""
    first = text.split("\n", 1)[0].rstrip("\r")
    if not MARKER.fullmatch(first):
        raise ValueError("the body's first line is not fbc's marker <!-- flowbuilder:diff stack=NAME --> "
                         "(write it with fbc diff --format markdown)")
    found = SUMMARY.findall(text)
    if len(found) != 1:
        raise ValueError(f"the body has {len(found)} <!-- flowbuilder:summary {{...}} --> lines, not one")
    try:
        data = json.loads(found[0])
        summary = Summary(has_changes=_flag(data, "has_changes"), risky=_flag(data, "risky"),
                          cost_delta=_cost(data.get("cost_delta")), exit=int(data["exit"]))
    except (ValueError, KeyError, TypeError) as exc:
        raise ValueError(f"the body's summary line is not what fbc writes: {exc}") from None
    if len(text) > MAX_BODY:
        raise ValueError(f"the body has {len(text)} characters; GitHub takes at most {MAX_BODY}")
    return Body(text, first, summary)


def post(github: GitHub, repo: str, pr: int, body: Body, author: str | None = None) -> Posted:
    """Update this stack's comment on the pull request, or create it. A create that failed on GitHub's side
    may still have happened, so before creating again the comments are listed once more. `author`: the login
    the token writes as (a GitHub App installation token's `<app-slug>[bot]`, which no API call tells);
    None asks GET /user."""
    base = f"/repos/{repo}/issues"
    listing = f"{base}/{pr}/comments"
    author = author or _own_login(github)
    for attempt in (1, 2):
        existing = _ours(github, listing, body.marker, author)
        if existing:
            answer = github.request("PATCH", f"{base}/comments/{existing[0]}", json={"body": body.text})
            return _posted("updated", answer.json())
        try:
            answer = github.request("POST", listing, json={"body": body.text}, idempotent=False)
        except GitHubError as exc:
            if attempt == 2 or not exc.unsure:
                raise
            continue
        return _one_left(github, base, listing, body, author, _posted("created", answer.json()))
    raise AssertionError("unreachable")


def _one_left(github: GitHub, base: str, listing: str, body: Body, author: str, created: Posted) -> Posted:
    """After a create: another run's create that this run did not see (both listed before either created)
    made two. The oldest is kept, with this run's body, and the newer ones are deleted; the other run does the
    same, so one is left whichever finishes first (a comment the other already deleted is 404: gone either way)."""
    ours = _ours(github, listing, body.marker, author)
    if not ours or ours == [created.id]:
        return created
    kept, posted = ours[0], created
    if kept != created.id:  # the other run's is older (or it already deleted this one): it gets this body
        posted = _posted("updated", github.request("PATCH", f"{base}/comments/{kept}", json={"body": body.text}).json())
    for extra in ours[1:]:
        try:
            github.request("DELETE", f"{base}/comments/{extra}")
        except GitHubError as exc:
            if exc.status != 404:
                raise
    return posted


def write_outputs(path: Path, summary: Summary) -> None:
    """Append the outputs to $GITHUB_OUTPUT (name=value lines; none of the values has a newline)."""
    with path.open("a", encoding="utf-8") as out:
        for name, value in summary.outputs().items():
            out.write(f"{name}={value}\n")


def _own_login(github: GitHub) -> str:
    """Who this token writes as when not told: GET /user's login where the token has a user (a personal or an
    app's user token), else the workflow token's github-actions[bot] (GET /user is 403 for it, and for a GitHub
    App installation token, whose `<app-slug>[bot]` must be given: --author, the action's comment-author)."""
    try:
        user = github.request("GET", "/user").json()
    except GitHubError as exc:
        if exc.status not in (403, 404):  # bad credentials, or GitHub unreachable: nothing else will work
            raise
        return ACTIONS_BOT
    return str(user.get("login") or ACTIONS_BOT)


def _ours(github: GitHub, path: str, marker: str, author: str) -> list[int]:
    """The IDs of the author's comments that start with this marker, oldest first (GitHub lists an issue's
    comments in the order they were made; another user's copy is not ours to edit)."""
    found = []
    for comment in github.pages(path):
        text = str(comment.get("body") or "")
        login = str((comment.get("user") or {}).get("login", ""))
        if text.split("\n", 1)[0].rstrip("\r") == marker and login == author:
            found.append(int(comment["id"]))
    return found


def _posted(action: str, data: Any) -> Posted:
    return Posted(action, int(data["id"]), str(data.get("html_url", "")))


def _flag(data: dict[str, Any], key: str) -> bool:
    value = data[key]
    if not isinstance(value, bool):
        raise TypeError(f"{key} is {value!r}, not true or false")
    return value


def _cost(value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not re.fullmatch(r"[+-]?\d+(\.\d+)?", value):
        raise TypeError(f"cost_delta is {value!r}, not a signed amount such as \"+12.34\"")
    return value


def _bool(value: bool) -> str:
    return "true" if value else "false"
