"""One pull-request comment per stack: `fbc diff --format markdown` writes a body whose first line is the hidden
marker `<!-- flowbuilder:diff stack=NAME -->` and which holds one `<!-- flowbuilder:summary {...} -->` line.
The first run creates the comment; later runs update the same one, found by that marker among the comments the
token's own user (or github-actions[bot]) wrote, so nobody else's comment is ever edited."""

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


def post(github: GitHub, repo: str, pr: int, body: Body) -> Posted:
    """Update this stack's comment on the pull request, or create it. A create that failed on GitHub's side
    may still have happened, so before creating again the comments are listed once more."""
    base = f"/repos/{repo}/issues"
    authors = _own_logins(github)
    for attempt in (1, 2):
        existing = _find(github, f"{base}/{pr}/comments", body.marker, authors)
        if existing is not None:
            answer = github.request("PATCH", f"{base}/comments/{existing}", json={"body": body.text})
            return _posted("updated", answer.json())
        try:
            answer = github.request("POST", f"{base}/{pr}/comments", json={"body": body.text}, idempotent=False)
        except GitHubError as exc:
            if attempt == 2 or not exc.unsure:
                raise
            continue
        return _posted("created", answer.json())
    raise AssertionError("unreachable")


def write_outputs(path: Path, summary: Summary) -> None:
    """Append the outputs to $GITHUB_OUTPUT (name=value lines; none of the values has a newline)."""
    with path.open("a", encoding="utf-8") as out:
        for name, value in summary.outputs().items():
            out.write(f"{name}={value}\n")


def _own_logins(github: GitHub) -> set[str]:
    """Who counts as this token's author: the workflow token's bot, and GET /user's login where the token has
    a user (a personal or app user token; the workflow token gets 403 there)."""
    try:
        user = github.request("GET", "/user").json()
    except GitHubError as exc:
        if exc.status not in (403, 404):  # bad credentials, or GitHub unreachable: nothing else will work
            raise
        return {ACTIONS_BOT}
    return {ACTIONS_BOT, str(user.get("login", ACTIONS_BOT))}


def _find(github: GitHub, path: str, marker: str, authors: set[str]) -> int | None:
    """The oldest comment of ours that starts with this marker (another user's copy is not ours to edit)."""
    for comment in github.pages(path):
        body = str(comment.get("body") or "")
        author = str((comment.get("user") or {}).get("login", ""))
        if body.split("\n", 1)[0].rstrip("\r") == marker and author in authors:
            return int(comment["id"])
    return None


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
