"""`python -m flowbuilder.runtime.api`: serve the API with uvicorn (the ECS command)."""

from __future__ import annotations

import logging

import uvicorn

from ..config import Settings, resolve_secrets
from .app import create_app


def main() -> None:
    # The runtime's own lines (database credentials read, for one); uvicorn configures only its loggers.
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    resolve_secrets()
    settings = Settings.from_env()
    uvicorn.run(create_app(settings), host=settings.host, port=settings.port,
                proxy_headers=True, forwarded_allow_ips="*", log_level="info")


if __name__ == "__main__":
    main()
