"""`fbc up --smoke`: one workflow through every part: the API records it, the queue carries it, a worker
runs its HTTP step against a local echo endpoint and its transform, and the API reports the result."""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx

MESSAGE = "hello from fbc up"


class _Echo(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        reply = json.dumps({"echo": json.loads(body or b"null"),
                            "idempotencyKey": self.headers.get("Idempotency-Key")}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(reply)))
        self.end_headers()
        self.wfile.write(reply)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@contextmanager
def echo_server() -> Iterator[str]:
    """A JSON echo endpoint on 127.0.0.1; yields its URL."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Echo)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/echo"
    finally:
        server.shutdown()
        server.server_close()


def workflow(echo_url: str) -> dict[str, Any]:
    return {"name": f"smoke-{uuid.uuid4().hex[:8]}", "definition": {"steps": [
        {"type": "http", "name": "echo", "method": "POST", "url": echo_url,
         "body": {"message": "{{ input.message }}"}},
        {"type": "transform", "name": "result", "expression": "{message: steps.echo.echo.message}"},
    ]}}


def run(api_url: str, api_key: str, echo_url: str, cancelled: Callable[[], bool],
        timeout: float = 120) -> dict[str, Any]:
    """Create the workflow, start it, wait for its outcome; the execution as the API returns it."""
    headers = {"Authorization": f"Bearer {api_key}"}
    with httpx.Client(base_url=api_url, headers=headers, timeout=30) as client:
        created = client.post("/workflows", json=workflow(echo_url))
        created.raise_for_status()
        started = client.post(f"/workflows/{created.json()['id']}/executions", json={"input": {"message": MESSAGE}})
        started.raise_for_status()
        execution_id = started.json()["id"]
        deadline = time.monotonic() + timeout
        while True:
            execution: dict[str, Any] = client.get(f"/executions/{execution_id}").raise_for_status().json()
            if execution["state"] in ("succeeded", "failed") or time.monotonic() > deadline or cancelled():
                return execution
            time.sleep(0.5)


def passed(execution: dict[str, Any]) -> bool:
    return bool(execution["state"] == "succeeded" and execution["output"] == {"message": MESSAGE})
