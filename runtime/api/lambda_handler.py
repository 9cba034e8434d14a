"""The API on Lambda behind a function URL (ultra), through Mangum."""

from __future__ import annotations

from typing import Any

from mangum import Mangum

from ..config import Settings, resolve_secrets
from .app import create_app

_handler: Mangum | None = None


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    global _handler
    if _handler is None:  # once per cold start
        resolve_secrets()
        _handler = Mangum(create_app(Settings.from_env()), lifespan="off")
    return _handler(event, context)
