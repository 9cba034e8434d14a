"""A stand-in for the ECS agent's task scale-in protection endpoint, on 127.0.0.1.

Each poll process of `fbc up`'s standard pool gets ECS_AGENT_URI = <this endpoint>/tasks/<n>, as ECS gives
each task its own agent URI; the worker PUTs ${ECS_AGENT_URI}/task-protection/v1/state while it holds an
execution, and the pool asks here before it stops a process on scale-in. Requests and answers have the
agent's shape ({"protection": {...}}, or {"error": {...}} for a bad request).
"""

from __future__ import annotations

import json
import re
import threading
import time
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

_PATH = re.compile(r"^/tasks/([A-Za-z0-9_-]+)/task-protection/v1/state$")


class LocalAgent:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._until: dict[str, float] = {}  # task -> time.monotonic() when its protection lapses
        self._server: ThreadingHTTPServer | None = None

    def start(self) -> None:
        agent = self

        class Handler(BaseHTTPRequestHandler):
            def do_PUT(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                agent._answer(self, body)

            def do_GET(self) -> None:
                agent._answer(self, None)

            def log_message(self, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, name="ecs-agent", daemon=True).start()

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def uri(self, task: str) -> str:
        """The ECS_AGENT_URI of one process."""
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.server_address[1]}/tasks/{task}"

    def protected(self, task: str) -> bool:
        with self._lock:
            return time.monotonic() < self._until.get(task, 0.0)

    def _answer(self, request: BaseHTTPRequestHandler, body: bytes | None) -> None:
        found = _PATH.match(request.path)
        if found is None:
            return _send(request, 404, {"error": {"Code": "NotFound", "Message": request.path}})
        task = found.group(1)
        if body is not None:
            try:
                wanted = json.loads(body)
                enabled, minutes = wanted["ProtectionEnabled"], wanted.get("ExpiresInMinutes", 120)
                if not isinstance(enabled, bool) or not isinstance(minutes, int) or not 1 <= minutes <= 2880:
                    raise ValueError(body)
            except (ValueError, KeyError, TypeError):
                return _send(request, 400, {"error": {"Code": "InvalidParameterException",
                                                      "Message": f"bad request: {body[:200]!r}"}})
            with self._lock:
                self._until[task] = time.monotonic() + minutes * 60 if enabled else 0.0
        with self._lock:
            left = self._until.get(task, 0.0) - time.monotonic()
        expires = (datetime.now(UTC) + timedelta(seconds=left)).strftime("%Y-%m-%dT%H:%M:%SZ") if left > 0 else None
        return _send(request, 200, {"protection": {"ExpirationDate": expires, "ProtectionEnabled": left > 0,
                                                   "TaskArn": f"arn:aws:ecs:local:000000000000:task/fbc-up/{task}"}})


def _send(request: BaseHTTPRequestHandler, status: int, answer: dict[str, Any]) -> None:
    payload = json.dumps(answer).encode()
    request.send_response(status)
    request.send_header("Content-Type", "application/json")
    request.send_header("Content-Length", str(len(payload)))
    request.end_headers()
    request.wfile.write(payload)
