"""`python -m flowbuilder.runtime.api`: serve the API with uvicorn (the ECS command)."""

from __future__ import annotations

import logging
import os

import uvicorn

from ..config import Settings
from ..secrets import load_database_url
from .app import create_app


def main() -> None:
    # The runtime's own lines (database credentials read, for one); uvicorn configures only its loggers.
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    load_database_url()
    # 0.0.0.0 by default: in a container the load balancer reaches the task on its own interface
    host = os.environ.get("FLOWBUILDER_HOST", "0.0.0.0")
    uvicorn.run(create_app(Settings.from_env()), host=host, port=int(os.environ.get("PORT", "8000")),
                proxy_headers=True, forwarded_allow_ips="*", log_level="info")


if __name__ == "__main__":
    main()
