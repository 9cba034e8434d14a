from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from hypothesis import settings

from flowbuilder.compiler.cli import cli

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "bench"))  # bench/specgen.py generates large specs for tests too
CORPUS = REPO / "tests" / "corpus"
IN_CI = os.environ.get("CI") == "true"


def run_fbc(*args: str, cwd: Path | None = None) -> Result:
    """fbc in-process (fast); stdout and stderr kept apart."""
    runner = CliRunner()
    old = Path.cwd()
    try:
        if cwd is not None:
            os.chdir(cwd)
        return runner.invoke(cli, list(args), prog_name="fbc", catch_exceptions=False)
    finally:
        os.chdir(old)


FBC = [sys.executable, "-c", "from flowbuilder.compiler.cli import main; main()"]  # the console script's entry


def run_fbc_process(*args: str, cwd: Path | None = None, env: dict[str, str] | None = None,
                    timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """fbc as a user runs it: a new interpreter through the console script's entry point."""
    return subprocess.run([*FBC, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)


@pytest.fixture
def spec_text() -> str:
    return (REPO / "flowbuilder.yaml").read_text("utf-8")


# CI runs the property tests on a fixed seed, so a landing never depends on luck; local runs keep
# exploring new examples (and hypothesis replays any failure it found from its database).
def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="session")
def moto_server() -> Iterator[str]:
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            urllib.request.urlopen(f"{url}/moto-api/", timeout=1)
            break
        except OSError:
            if time.monotonic() > deadline or proc.poll() is not None:
                proc.kill()
                raise RuntimeError("moto server did not start") from None
            time.sleep(0.2)
    yield url
    proc.terminate()
    proc.wait(timeout=10)


Respond = Callable[[BaseHTTPRequestHandler, Any], tuple[int, Any]]


def json_server(respond: Respond) -> tuple[ThreadingHTTPServer, str]:
    """A local HTTP endpoint for workflow steps, serving until shut down; (server, base URL).
    `respond(request, body)` gets the parsed JSON body and returns (status, JSON answer or None for none)."""

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)) or b"null")
            status, answer = respond(self, body)
            self.send_response(status)
            if answer is None:
                self.end_headers()
                return
            payload = json.dumps(answer).encode()
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        do_GET = do_POST

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}"


def fresh_postgres_url() -> str:
    """The machine's PostgreSQL (FLOWBUILDER_TEST_POSTGRES_URL, which .ci/run sets after starting it) with an
    empty public schema; skipped outside CI when there is none."""
    url = os.environ.get("FLOWBUILDER_TEST_POSTGRES_URL", "")
    if not url:
        if IN_CI:
            raise RuntimeError("FLOWBUILDER_TEST_POSTGRES_URL is not set (.ci/run starts PostgreSQL)")
        pytest.skip("no PostgreSQL: set FLOWBUILDER_TEST_POSTGRES_URL")
    from sqlalchemy import create_engine, text

    engine = create_engine(url, isolation_level="AUTOCOMMIT")
    with engine.connect() as connection:
        connection.execute(text("DROP SCHEMA public CASCADE"))
        connection.execute(text("CREATE SCHEMA public"))
    engine.dispose()
    return url


settings.register_profile("ci", derandomize=True, print_blob=True)
if IN_CI:
    settings.load_profile("ci")
