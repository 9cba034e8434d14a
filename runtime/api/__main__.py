"""`python -m flowbuilder.runtime.api`: serve the API with uvicorn (the ECS command)."""

from __future__ import annotations

import logging

import uvicorn

from ..config import Settings, resolve_secrets
from .app import create_app

KEEP_ALIVE_SECONDS = 65


def main() -> None:
    # The runtime's own lines (database credentials read, for one); uvicorn configures only its loggers.
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    resolve_secrets()
    settings = Settings.from_env()
    # Idle keep-alive connections are kept longer than the load balancer's idle timeout (60 s): with uvicorn's
    # 5 s the balancer could send a request on a connection uvicorn was closing, a 502 to the client (AWS's
    # advice for ALB targets); bench/load_api.py saw such resets at 50 requests/s.
    uvicorn.run(create_app(settings), host=settings.host, port=settings.port,
                proxy_headers=True, forwarded_allow_ips="*", log_level="info", timeout_keep_alive=KEEP_ALIVE_SECONDS)


if __name__ == "__main__":
    main()
