"""Limits on what a request may carry.

The body size, as ASGI middleware: a body larger than the limit answers 413 without being read whole (by its
Content-Length at once; a chunked body as soon as the bytes received pass the limit).

The nesting depth of JSON the API stores (an execution's input, a workflow's definition) is limited where step
outputs are too: workflows/transform.py, MAX_DEPTH.
"""

from __future__ import annotations

import json
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..workflows.transform import MAX_DEPTH, too_deep

__all__ = ["MAX_DEPTH", "BodyTooLarge", "too_deep"]

class BodyTooLarge:
    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app, self.limit = app, limit

    async def _refuse(self, send: Send) -> None:
        body = json.dumps({"detail": f"the request body is larger than {self.limit} bytes"}).encode()
        await send({"type": "http.response.start", "status": 413,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                                (b"connection", b"close")]})
        await send({"type": "http.response.body", "body": body})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        length = dict(scope["headers"]).get(b"content-length")
        if length is not None:
            try:
                declared = int(length)
            except ValueError:
                declared = -1
            if declared > self.limit:
                await self._refuse(send)
                return
        received = 0
        refused = False

        async def counted() -> Message:
            nonlocal received, refused
            if refused:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.limit:
                    refused = True
                    await self._refuse(send)
                    return {"type": "http.disconnect"}  # the application stops reading; its answer is dropped
            return message

        async def guarded(message: Message) -> Any:
            if not refused:
                await send(message)

        await self.app(scope, counted, guarded)
