"""Endpoints that misbehave, and fbc run as a user runs it, for the tests of interrupts, timeouts and errors
(test_deploy_signals.py, test_deploy_timeouts.py, test_deploy_json.py).

- silent(): accepts connections and never answers.
- throttling(): answers every call 400 Throttling.
- Proxy: moto's server behind a forwarding proxy that holds one call until the test is done (so a signal
  reaches fbc while CloudFormation "computes" a change set or "deploys"), and can make a stack look busy.
- start(): fbc in a new interpreter with Python's own Ctrl-C handler, as on a terminal (a test runner started
  in the background may ignore SIGINT, and fbc keeps an ignored signal ignored), optionally on a terminal
  (a pty).
"""

from __future__ import annotations

import os
import select
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

FBC = [sys.executable, "-c", "import signal; signal.signal(signal.SIGINT, signal.default_int_handler); "
                             "from flowbuilder.compiler.cli import main; main()"]
THROTTLED = (b'<ErrorResponse xmlns="http://cloudformation.amazonaws.com/doc/2010-05-15/"><Error><Type>Sender</Type>'
             b'<Code>Throttling</Code><Message>Rate exceeded</Message></Error><RequestId>1</RequestId></ErrorResponse>')


@contextmanager
def silent() -> Iterator[str]:
    """An endpoint that accepts every connection and never answers; its URL."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(64)
    server.settimeout(0.1)  # the thread looks at `stop` between waits
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        while not stop.is_set():
            try:
                held.append(server.accept()[0])
            except TimeoutError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.getsockname()[1]}"
    finally:
        # The thread ends before the socket closes: a thread still waiting in accept() on a closed socket's
        # descriptor number took the next server's connections once the number was reused (a later test's
        # fake GitHub saw "Server disconnected without sending a response").
        stop.set()
        thread.join()
        server.close()
        for conn in held:
            conn.close()


@contextmanager
def throttling() -> Iterator[tuple[str, list[float]]]:
    """An endpoint that answers every call 400 Throttling; its URL and when each call came."""
    calls: list[float] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            calls.append(time.monotonic())
            self.send_response(400)
            self.send_header("Content-Type", "text/xml")
            self.send_header("Content-Length", str(len(THROTTLED)))
            self.end_headers()
            self.wfile.write(THROTTLED)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", calls
    finally:
        server.shutdown()
        server.server_close()


class Proxy:
    """moto's server behind a proxy. The first `hold` call (after an `after` call, if given) waits for
    `release` (or the test's end), and `held` is set meanwhile; with `busy`, every DescribeStacks after an
    `after` call answers UPDATE_IN_PROGRESS, as for a stack CloudFormation is still updating (moto finishes
    at once)."""

    def __init__(self, upstream: str, hold: str, after: str | None = None, busy: bool = False) -> None:
        self.actions: list[str] = []
        self.held = threading.Event()
        self._release = threading.Event()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                action = parse_qs(body.decode()).get("Action", [""])[0]
                started = after is None or after in proxy.actions
                proxy.actions.append(action)
                if action == hold and started and not proxy.held.is_set():
                    proxy.held.set()
                    proxy._release.wait(120)  # then answered, if anyone still listens
                request = urllib.request.Request(upstream + self.path, data=body, method="POST", headers={
                    k: v for k, v in self.headers.items() if k.lower() not in ("host", "content-length")})
                try:
                    with urllib.request.urlopen(request, timeout=30) as answer:
                        status, payload = answer.status, answer.read()
                except urllib.error.HTTPError as error:
                    status, payload = error.code, error.read()
                if busy and started and action == "DescribeStacks":
                    payload = payload.replace(b"UPDATE_COMPLETE", b"UPDATE_IN_PROGRESS")
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "text/xml")
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                except OSError:
                    pass

            def log_message(self, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def release(self) -> None:
        self._release.set()

    def close(self) -> None:
        self._release.set()
        self._server.shutdown()
        self._server.server_close()


def start(env: dict[str, str], *args: str, terminal: bool = False) -> tuple[subprocess.Popen[bytes], int | None]:
    """fbc running; on a terminal (a pty as stdin, stdout and stderr, CI unset) it is interactive, and the
    pty's controlling side is returned too."""
    if not terminal:
        return subprocess.Popen([*FBC, *args], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE), None
    import pty

    master, slave = pty.openpty()
    proc = subprocess.Popen([*FBC, *args], env={k: v for k, v in env.items() if k != "CI"}, stdin=slave,
                            stdout=slave, stderr=slave)
    os.close(slave)
    return proc, master


def read_until(master: int, text: bytes, timeout: float = 120) -> bytes:
    """What fbc wrote on its terminal up to `text`."""
    seen = b""
    deadline = time.monotonic() + timeout
    while text not in seen:
        ready, _, _ = select.select([master], [], [], max(0.0, deadline - time.monotonic()))
        if not ready:
            raise AssertionError(f"no {text!r} on the terminal within {timeout}s; it showed {seen[-2000:]!r}")
        try:
            chunk = os.read(master, 4096)
        except OSError:  # the other side closed
            chunk = b""
        if not chunk:
            raise AssertionError(f"the terminal closed before {text!r}; it showed {seen[-2000:]!r}")
        seen += chunk
    return seen


def drain(master: int) -> bytes:
    """The rest of what fbc wrote on its terminal, once it has exited."""
    out = b""
    while select.select([master], [], [], 0.2)[0]:
        try:
            chunk = os.read(master, 4096)
        except OSError:
            break
        if not chunk:
            break
        out += chunk
    os.close(master)
    return out


def wait(proc: subprocess.Popen[bytes], timeout: float = 120) -> tuple[int, str, str]:
    """(exit code, stdout, stderr) of a started fbc."""
    out, err = proc.communicate(timeout=timeout)
    return proc.returncode, (out or b"").decode(), err.decode()


def spec_with(tmp_path: Path, source: Path, old: str, new: str) -> Path:
    """A copy of a spec with one edit."""
    text = source.read_text("utf-8")
    assert old in text
    changed = tmp_path / "flowbuilder.yaml"
    changed.write_text(text.replace(old, new), "utf-8")
    return changed
