"""A small Language Server Protocol client over stdio, enough to drive yaml-language-server in tests."""

from __future__ import annotations

import json
import queue
import subprocess
import threading
import time
from pathlib import Path
from typing import Any


class LspClient:
    def __init__(self, command: list[str], settings: dict[str, Any]) -> None:
        self.settings = settings
        self.proc = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.DEVNULL)
        self._next_id = 0
        self._responses: dict[int, Any] = {}
        self._cond = threading.Condition()
        self.diagnostics: queue.Queue[dict[str, Any]] = queue.Queue()
        self._reader = threading.Thread(target=self._read_loop, daemon=True)
        self._reader.start()

    # --- framing -----------------------------------------------------------------------------------------
    def _write(self, message: dict[str, Any]) -> None:
        body = json.dumps({"jsonrpc": "2.0", **message}).encode()
        assert self.proc.stdin is not None
        self.proc.stdin.write(b"Content-Length: %d\r\n\r\n" % len(body) + body)
        self.proc.stdin.flush()

    def _read_one(self) -> dict[str, Any] | None:
        assert self.proc.stdout is not None
        length = 0
        while True:
            line = self.proc.stdout.readline()
            if not line:
                return None
            if line in (b"\r\n", b"\n"):
                break
            name, _, value = line.decode().partition(":")
            if name.strip().lower() == "content-length":
                length = int(value)
        return json.loads(self.proc.stdout.read(length))  # type: ignore[no-any-return]

    def _read_loop(self) -> None:
        while (message := self._read_one()) is not None:
            if "id" in message and "method" in message:  # a request from the server
                self._write({"id": message["id"], "result": self._answer(message)})
            elif "id" in message:
                with self._cond:
                    self._responses[message["id"]] = message
                    self._cond.notify_all()
            elif message.get("method") == "textDocument/publishDiagnostics":
                self.diagnostics.put(message["params"])

    def _answer(self, request: dict[str, Any]) -> Any:
        if request["method"] == "workspace/configuration":
            return [self.settings.get(item.get("section", ""), None) for item in request["params"]["items"]]
        return None

    # --- API ---------------------------------------------------------------------------------------------
    def request(self, method: str, params: Any, timeout: float = 30) -> Any:
        self._next_id += 1
        ident = self._next_id
        self._write({"id": ident, "method": method, "params": params})
        deadline = time.monotonic() + timeout
        with self._cond:
            while ident not in self._responses:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"{method}: no answer in {timeout}s")
                self._cond.wait(left)
            message = self._responses.pop(ident)
        if "error" in message:
            raise RuntimeError(f"{method}: {message['error']}")
        return message.get("result")

    def notify(self, method: str, params: Any) -> None:
        self._write({"method": method, "params": params})

    def start(self, root: Path) -> None:
        self.request("initialize", {
            "processId": None, "rootUri": root.as_uri(),
            "capabilities": {
                "workspace": {"configuration": True},
                "textDocument": {"completion": {"completionItem": {"snippetSupport": False}},
                                 "hover": {"contentFormat": ["markdown", "plaintext"]},
                                 "publishDiagnostics": {}},
            },
        })
        self.notify("initialized", {})
        self.notify("workspace/didChangeConfiguration", {"settings": self.settings})

    def open(self, path: Path, text: str) -> str:
        uri = path.as_uri()
        self.notify("textDocument/didOpen",
                    {"textDocument": {"uri": uri, "languageId": "yaml", "version": 1, "text": text}})
        return uri

    def wait_diagnostics(self, uri: str, timeout: float = 30) -> list[dict[str, Any]]:
        """The first non-empty diagnostics published for uri (servers publish [] before validating)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                params = self.diagnostics.get(timeout=max(0.1, deadline - time.monotonic()))
            except queue.Empty:
                break
            if params["uri"] == uri and params["diagnostics"]:
                return params["diagnostics"]  # type: ignore[no-any-return]
        raise TimeoutError(f"no diagnostics for {uri} in {timeout}s")

    def close(self) -> None:
        try:
            self.request("shutdown", None, timeout=5)
            self.notify("exit", None)
            self.proc.wait(timeout=5)
        except (TimeoutError, OSError, subprocess.TimeoutExpired):
            self.proc.kill()
            self.proc.wait()
