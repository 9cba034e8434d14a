"""The part of GitHub's REST API that `fbc comment` uses, over httpx: authenticated requests with retries where
a retry is safe, Link-header pagination, and one-line errors that never carry the token."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import urlsplit

import httpx

API_VERSION = "2022-11-28"
ATTEMPTS = 4
MAX_WAIT = 60.0  # a rate limit that resets later than this is reported, not slept through in CI


class GitHubError(Exception):
    """What GitHub (or the way to it) answered, as one line for the user; `status` is GitHub's HTTP status (0:
    no answer) and `unsure` says the request may have been done all the same (a 5xx, a timeout)."""

    def __init__(self, message: str, status: int = 0, unsure: bool = False) -> None:
        super().__init__(message)
        self.status, self.unsure = status, unsure


class _Retry(Exception):
    def __init__(self, why: str, wait: float) -> None:
        super().__init__(why)
        self.why, self.wait = why, wait


class GitHub:
    """A client for one API root (https://api.github.com, or a GitHub Enterprise Server's /api/v3)."""

    def __init__(self, api_url: str, token: str, *, timeout: float = 30.0,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.api_url = api_url.rstrip("/")
        self._origin = urlsplit(self.api_url)[:2]
        self._sleep = sleep
        self._http = httpx.Client(timeout=timeout, headers={
            "Authorization": f"Bearer {token}", "Accept": "application/vnd.github+json",
            "X-GitHub-Api-Version": API_VERSION, "User-Agent": "flowbuilder-fbc"})

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> GitHub:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def request(self, method: str, path: str, *, json: Any = None, idempotent: bool = True) -> httpx.Response:
        """One call, retried on rate limits (GitHub did not do it) and, when `idempotent`, on 5xx and timeouts
        (a create that timed out may have happened: the caller looks before it creates again)."""
        url = path if path.startswith(("http://", "https://")) else f"{self.api_url}{path}"
        if urlsplit(url)[:2] != self._origin:  # a Link header elsewhere does not get our token
            raise GitHubError(f"GitHub sent a link outside {self.api_url}: {url}")
        what = f"{method} {urlsplit(url).path}"
        for attempt in range(1, ATTEMPTS + 1):
            try:
                return self._once(method, url, json, idempotent, what)
            except _Retry as retry:
                if attempt == ATTEMPTS:
                    raise GitHubError(f"{retry.why} ({what}), {ATTEMPTS} attempts") from None
                self._sleep(retry.wait if retry.wait >= 0 else 2.0 ** attempt)
        raise AssertionError("unreachable")

    def _once(self, method: str, url: str, json: Any, idempotent: bool, what: str) -> httpx.Response:
        try:
            response = self._http.request(method, url, json=json)
        except httpx.TimeoutException:
            if idempotent:
                raise _Retry("GitHub timed out", -1) from None
            raise GitHubError(f"GitHub timed out ({what})", unsure=True) from None
        except httpx.TransportError as exc:  # connect errors: nothing was sent
            if isinstance(exc, httpx.ConnectError):
                raise _Retry(f"cannot reach {self.api_url}: {exc}", -1) from None
            raise GitHubError(f"cannot reach {self.api_url}: {exc} ({what})") from None
        if response.is_success:
            return response
        status, message = response.status_code, _message(response)
        wait = _rate_limit_wait(response)
        if wait is not None:
            if wait > MAX_WAIT:
                raise GitHubError(f"GitHub's rate limit: {message}; it resets in {wait:.0f}s ({what})", status)
            raise _Retry(f"GitHub's rate limit: {message}", wait)
        if status >= 500 and idempotent:
            raise _Retry(f"GitHub answered {status} {message}", -1)
        raise GitHubError(f"GitHub answered {status} {message} ({what}){_hint(status)}", status, status >= 500)

    def pages(self, path: str) -> Iterator[Any]:
        """Every item of a list endpoint, following rel="next" links."""
        url: str | None = path + ("&" if "?" in path else "?") + "per_page=100"
        while url:
            response = self.request("GET", url)
            yield from _json(response)
            url = response.links.get("next", {}).get("url")


def _json(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        raise GitHubError(f"GitHub answered {response.status_code} with no JSON "
                          f"({response.request.method} {response.request.url.path})") from None


def _message(response: httpx.Response) -> str:
    """GitHub's own one-line reason (its JSON `message`), else the HTTP reason."""
    try:
        message = response.json().get("message")
    except (ValueError, AttributeError):
        message = None
    return " ".join(str(message or response.reason_phrase).split())[:200]


def _rate_limit_wait(response: httpx.Response) -> float | None:
    """Seconds to wait when this answer is a rate limit (429, or 403 with Retry-After or no requests left),
    else None. GitHub says when by Retry-After (secondary limits) or x-ratelimit-reset (primary)."""
    headers = response.headers
    limited = response.status_code == 429 or (response.status_code == 403 and (
        "retry-after" in headers or headers.get("x-ratelimit-remaining") == "0"))
    if not limited:
        return None
    if "retry-after" in headers:
        return _retry_after(headers["retry-after"])
    if "x-ratelimit-reset" in headers:
        try:
            return max(0.0, float(headers["x-ratelimit-reset"]) - time.time())
        except ValueError:
            pass
    return 60.0  # GitHub's advice when it names no time: wait at least a minute


def _retry_after(value: str) -> float:
    """Retry-After is seconds or an HTTP date."""
    try:
        return max(0.0, float(value))
    except ValueError:
        try:
            return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
        except (TypeError, ValueError):
            return 60.0


def _hint(status: int) -> str:
    return {
        401: ": the token is missing, wrong or expired",
        403: ": the token may not do this (the workflow needs `permissions: pull-requests: write`)",
        404: ": no such repository or pull request, or the token cannot see it",
    }.get(status, "")
