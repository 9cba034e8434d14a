"""HTTP steps: an SSRF guard, retries with back-off, and an Idempotency-Key on every request.

The guard resolves the host and refuses link-local (169.254.0.0/16: the instance and ECS task metadata
endpoints, which hand out credentials), loopback, private and other non-global addresses, unless the
configured allowlist opens them. Plain-HTTP connections go to the address that was checked, so a DNS answer
that changes between check and connect (rebinding) cannot slip through; HTTPS connects by name, as TLS
verification needs, after every resolved address has passed the guard.
"""

from __future__ import annotations

import ipaddress
import json
import socket
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

if TYPE_CHECKING:  # imported by the first HTTP step: a worker running only transforms never pays for httpx
    import httpx

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class BlockedAddress(Exception):
    pass


class StepFailed(Exception):
    pass


class DeadlineExceeded(Exception):
    """The execution's time (the worker timeout) ran out during this step."""


def check_address(address: str, allowlist: Sequence[Network]) -> None:
    ip = ipaddress.ip_address(address)
    if any(ip in net for net in allowlist):
        return
    if ip.is_link_local:
        raise BlockedAddress(f"{address} is link-local (instance and task metadata endpoints live there)")
    if ip.is_loopback:
        raise BlockedAddress(f"{address} is a loopback address")
    if ip.is_private or not ip.is_global:
        raise BlockedAddress(f"{address} is a private or reserved address")


def resolve(host: str, port: int, allowlist: Sequence[Network]) -> str:
    """The first address of host that passes the guard (every address is checked)."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise StepFailed(f"cannot resolve {host}: {exc}") from None
    addresses = sorted({str(info[4][0]) for info in infos})
    for address in addresses:
        check_address(address, allowlist)
    return addresses[0]


def call(method: str, url: str, *, headers: dict[str, str], body: Any, timeout: float, attempts: int,
         backoff: float, idempotency_key: str, allowlist: Sequence[Network], deadline: float | None = None,
         max_bytes: int = 0) -> Any:
    """Make the request; retry on connection errors, 429 and 5xx; return the JSON (or text) body. With a
    `deadline` (time.monotonic()), no attempt, back-off or read runs past it: DeadlineExceeded instead. With
    `max_bytes`, a longer response body fails the step as soon as it passes the limit."""
    import httpx

    parts = urlsplit(url)
    host = parts.hostname or ""
    port = parts.port or (443 if parts.scheme == "https" else 80)
    address = resolve(host, port, allowlist)
    request_headers = {**headers, "Idempotency-Key": idempotency_key}
    last = ""
    for attempt in range(attempts):
        if attempt:
            pause = backoff * 2 ** (attempt - 1)
            if deadline is not None and time.monotonic() + pause >= deadline:
                raise DeadlineExceeded(f"{method} {url}: no time left for attempt {attempt + 1} ({last})")
            time.sleep(pause)
        limit = timeout if deadline is None else min(timeout, deadline - time.monotonic())
        if limit <= 0:
            raise DeadlineExceeded(f"{method} {url}: no time left for attempt {attempt + 1}")
        try:
            pinned = url if parts.scheme == "https" else url.replace(f"//{parts.netloc}", f"//{_net(address, port)}", 1)
            with httpx.Client(timeout=limit, follow_redirects=False) as client, client.stream(
                    method, pinned, headers={**request_headers, "Host": parts.netloc}, json=body) as response:
                content = _read(response, deadline, max_bytes)
        except httpx.HTTPError as exc:
            if deadline is not None and time.monotonic() >= deadline:
                raise DeadlineExceeded(f"{method} {url}: {type(exc).__name__} at the deadline") from None
            last = f"{type(exc).__name__}: {exc}"
            continue
        if response.status_code == 429 or response.status_code >= 500:
            last = f"HTTP {response.status_code}"
            continue
        if response.status_code >= 400:
            text = content.decode(response.encoding or "utf-8", errors="replace")
            raise StepFailed(f"{method} {url} answered HTTP {response.status_code}: {text[:200]}")
        try:
            return json.loads(content)
        except ValueError:
            return content.decode(response.encoding or "utf-8", errors="replace")
    raise StepFailed(f"{method} {url} failed after {attempts} attempt(s): {last}")


def _read(response: httpx.Response, deadline: float | None, max_bytes: int = 0) -> bytes:
    """The body, checking the deadline between chunks: httpx's timeout bounds each read, not the whole
    body, so a server that trickles bytes would otherwise outlast it. Past `max_bytes` (if set): StepFailed."""
    chunks, size = [], 0
    for chunk in response.iter_bytes():
        chunks.append(chunk)
        size += len(chunk)
        if max_bytes and size > max_bytes:
            raise StepFailed(f"{response.request.method} {response.request.url}: response body over {max_bytes} bytes")
        if deadline is not None and time.monotonic() >= deadline:
            raise DeadlineExceeded(f"{response.request.method} {response.request.url}: the body was still arriving")
    return b"".join(chunks)


def _net(address: str, port: int) -> str:
    return f"[{address}]:{port}" if ":" in address else f"{address}:{port}"
