"""A small GitHub on 127.0.0.1: the REST calls `fbc comment` makes (GET /user, list an issue's comments with
Link pagination, create a comment, update or delete one: only its author may), with GitHub's headers, its
401/403/404 answers, and what a test can queue: failures (a rate limit with Retry-After, a 5xx after the write
happened) and another run's comment that lands just before the next create (two runs at once)."""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

BOT = "github-actions[bot]"


@dataclass
class Failure:
    status: int
    method: str = ""  # "" any
    after: bool = False  # do the request, then answer with the failure (a write that happened)
    headers: dict[str, str] = field(default_factory=dict)
    message: str = "Server Error"


@dataclass
class State:
    tokens: dict[str, str | None]  # token -> its user's login; None: a token without a user (GET /user is 403)
    repos: set[str]
    bots: dict[str, str] = field(default_factory=dict)  # a token without a user -> the login it writes as
    # (default BOT, the workflow token's): a GitHub App installation token writes as <app-slug>[bot]
    page_size: int = 30  # GitHub caps per_page at 100; small here, so pagination happens
    comments: dict[tuple[str, int], list[dict[str, Any]]] = field(default_factory=dict)
    failures: list[Failure] = field(default_factory=list)
    before_create: list[tuple[str, str]] = field(default_factory=list)  # (login, body): another run's create
    # that lands between a run's listing and its own create, one per create
    after_create: list[tuple[str, str]] = field(default_factory=list)  # the same, landing just after it
    log: list[tuple[str, str]] = field(default_factory=list)  # (method, path?query)
    next_id: int = 1000
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, repo: str, issue: int, login: str, body: str) -> dict[str, Any]:
        with self.lock:
            self.next_id += 1
            comment = {"id": self.next_id, "body": body, "user": {"login": login},
                       "html_url": f"https://github.test/{repo}/pull/{issue}#issuecomment-{self.next_id}"}
            self.comments.setdefault((repo, issue), []).append(comment)
            return comment


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def log_message(self, *_: Any) -> None:  # quiet
        pass

    def do_GET(self) -> None:
        self._serve("GET")

    def do_POST(self) -> None:
        self._serve("POST")

    def do_PATCH(self) -> None:
        self._serve("PATCH")

    def do_DELETE(self) -> None:
        self._serve("DELETE")

    def _serve(self, method: str) -> None:
        state = self.server.state
        url = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        payload = json.loads(self.rfile.read(length)) if length else None
        state.log.append((method, self.path))
        if (self.headers.get("Accept") != "application/vnd.github+json"
                or self.headers.get("X-GitHub-Api-Version") != "2022-11-28"):
            return self._send(400, {"message": "missing GitHub's Accept or X-GitHub-Api-Version header"})
        auth = self.headers.get("Authorization", "")
        token = auth.removeprefix("Bearer ") if auth.startswith("Bearer ") else ""
        if token not in state.tokens:
            return self._send(401, {"message": "Bad credentials"})
        failure = self._failure(method)
        if failure is not None and not failure.after:
            return self._send(failure.status, {"message": failure.message}, failure.headers)
        login = state.tokens[token]
        writer = login or state.bots.get(token, BOT)
        status, body, headers = self._route(method, url.path, parse_qs(url.query), login, writer, payload)
        if failure is not None:
            return self._send(failure.status, {"message": failure.message}, failure.headers)
        self._send(status, body, headers)

    def _failure(self, method: str) -> Failure | None:
        state = self.server.state
        with state.lock:
            for failure in state.failures:
                if failure.method in ("", method):
                    state.failures.remove(failure)
                    return failure
        return None

    def _route(self, method: str, path: str, query: dict[str, list[str]], login: str | None, writer: str,
               payload: Any) -> tuple[int, Any, dict[str, str]]:
        state = self.server.state
        if method == "GET" and path == "/user":
            if login is None:
                return 403, {"message": "Resource not accessible by integration"}, {}
            return 200, {"login": login}, {}
        listing = re.fullmatch(r"/repos/([^/]+/[^/]+)/issues/(\d+)/comments", path)
        if listing and listing[1] in state.repos:
            key = (listing[1], int(listing[2]))
            if method == "GET":
                return self._page(key, query)
            if method == "POST":
                if state.before_create:
                    state.add(*key, *state.before_create.pop(0))
                created = state.add(*key, writer, str(payload["body"]))
                if state.after_create:
                    state.add(*key, *state.after_create.pop(0))
                return 201, created, {}
        one = re.fullmatch(r"/repos/([^/]+/[^/]+)/issues/comments/(\d+)", path)
        if one and one[1] in state.repos and method in ("PATCH", "DELETE"):
            for (repo, _), comments in state.comments.items():
                for comment in comments:
                    if repo == one[1] and comment["id"] == int(one[2]):
                        if comment["user"]["login"] != writer:
                            return 403, {"message": "Resource not accessible by integration"}, {}
                        if method == "DELETE":
                            comments.remove(comment)
                            return 204, None, {}
                        comment["body"] = str(payload["body"])
                        return 200, comment, {}
        return 404, {"message": "Not Found"}, {}

    def _page(self, key: tuple[str, int], query: dict[str, list[str]]) -> tuple[int, Any, dict[str, str]]:
        state = self.server.state
        size = min(int(query.get("per_page", ["30"])[0]), 100, state.page_size)
        page = int(query.get("page", ["1"])[0])
        comments = state.comments.get(key, [])
        pages = max(1, -(-len(comments) // size))
        headers = {}
        if page < pages:
            base = f"http://127.0.0.1:{self.server.server_port}/repos/{key[0]}/issues/{key[1]}/comments"
            headers["Link"] = (f'<{base}?per_page={size}&page={page + 1}>; rel="next", '
                               f'<{base}?per_page={size}&page={pages}>; rel="last"')
        return 200, comments[(page - 1) * size:page * size], headers

    def _send(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
        data = b"" if status == 204 else json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, state: State) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.state = state


@contextmanager
def fake_github(state: State) -> Iterator[str]:
    """Serve `state` on 127.0.0.1; yields the API URL."""
    server = _Server(state)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()
