"""The API: health and readiness here, workflows and executions (202, Idempotency-Key, bearer API keys) in
routes.py.

Importing this module imports FastAPI and the settings only. create_app sets up the database (migrating it
unless told not to); the authenticated routes, their models and the workflow definitions are imported and
built on the first request for anything but health, so a cold start answering /healthz (Lambda: every new
instance's first request may be one) pays for none of them. The SQS client is made when first used.
"""

from __future__ import annotations

import threading
from typing import Any

from fastapi import APIRouter, FastAPI, Request, Response, status
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from ..config import Settings
from ..queue import Queue
from .limits import BodyTooLarge


class _RoutesOnDemand:
    """ASGI middleware: include the authenticated routes before the first request that is not for health (the
    OpenAPI schema and docs included), once."""

    def __init__(self, app: ASGIApp, include: Any, health: tuple[str, ...]) -> None:
        self.app, self.include, self.health = app, include, health

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in ("http", "websocket") and scope.get("path") not in self.health:
            self.include()
        await self.app(scope, receive, send)


def create_app(settings: Settings, queue: Queue | None = None, *, run_migrations: bool = True) -> FastAPI:
    from ..db.session import migrate, sessions

    if run_migrations:
        migrate(settings.database_url, settings.db_secret_arn)
    factory = sessions(settings.database_url, settings.db_secret_arn)
    outbox = queue or Queue(settings.queue_url)
    health = APIRouter()

    @health.get("/healthz", tags=["health"])
    def healthz() -> dict[str, str]:
        # Which deployment answered: an operator checking prod must not be reading staging.
        return {"status": "ok", "app": settings.app, "environment": settings.environment, "role": settings.role}

    @health.get("/readyz", tags=["health"], responses={503: {"description": "database or queue unreachable"}})
    def readyz(response: Response) -> dict[str, str]:
        from sqlalchemy import text

        checks = {}
        try:
            with factory() as session:
                session.execute(text("SELECT 1"))
            checks["database"] = "ok"
        except Exception as exc:  # readiness reports, it does not crash
            checks["database"] = type(exc).__name__
        try:
            outbox.reachable()
            checks["queue"] = "ok"
        except Exception as exc:
            checks["queue"] = type(exc).__name__
        if any(v != "ok" for v in checks.values()):
            response.status_code = status.HTTP_503_SERVICE_UNAVAILABLE
        return checks

    # The schema and docs live under the API's path too: the load balancer and CloudFront send only that path
    # to the API, so /openapi.json at the root would reach the frontend.
    base = settings.base_path
    app = FastAPI(title="Flow Builder API", version="0.1.0",
                  description="Workflows, executions through a queue, and their results.",
                  openapi_url=f"{base}/openapi.json", docs_url=f"{base}/docs", redoc_url=f"{base}/redoc")
    app.add_middleware(BodyTooLarge, limit=settings.max_body_bytes)

    @app.exception_handler(RequestValidationError)
    async def invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        # FastAPI's own answer echoes the input, which may hold what JSON cannot encode (NaN): type, place, why.
        errors = [{"type": e.get("type"), "loc": list(e.get("loc", ())), "msg": e.get("msg")} for e in exc.errors()]
        return JSONResponse({"detail": errors}, status_code=422)

    app.state.sessions = factory
    app.state.api_keys = [k.encode() for k in settings.api_keys]
    app.include_router(health, prefix=base)

    included: list[bool] = []
    lock = threading.Lock()

    def include() -> None:
        if included:
            return
        with lock:
            if not included:
                from .routes import router

                app.include_router(router(factory, outbox), prefix=base)
                included.append(True)

    def openapi() -> dict[str, Any]:  # complete when asked directly too, before any request
        include()
        return FastAPI.openapi(app)

    app.openapi = openapi  # type: ignore[method-assign]
    app.add_middleware(_RoutesOnDemand, include=include, health=(f"{base}/healthz", f"{base}/readyz"))
    return app
