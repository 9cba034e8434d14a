"""The scheduler Lambda handler (no web framework import: it cold-starts on every schedule).

Events (compiler/contract.py): {"type": "schedule", "schedule", "workflow", "input", "scheduledTime"} creates
the execution exactly once per (schedule, scheduled time) and sends it; {"type": "sweep"} re-sends
executions whose lease expired, that were recorded but never sent, or that were sent and not claimed within
executions.queued_after (derived from FLOWBUILDER_WORKER_MODE and the poll settings, which the compiled
template gives this function from the worker that reads its queue).
"""

from __future__ import annotations

import gc
import json
import logging
import sys
from typing import Any

# A cold start allocates tens of thousands of objects that live as long as the process (SQLAlchemy's ORM and
# PostgreSQL dialect, psycopg, the models); the cyclic collector would walk them over and over while they are
# made. It is paused while this module imports and while the first invocation connects; then what survived is
# frozen (never walked again, by warm invocations either) and collection resumes. About 30 ms of a cold sweep's
# 400 on PostgreSQL (bench/cold_paths.py).
_collecting = gc.isenabled()
gc.disable()

from sqlalchemy import select  # noqa: E402
from sqlalchemy.exc import DBAPIError  # noqa: E402

from . import executions  # noqa: E402
from .config import Settings, resolve_secrets  # noqa: E402
from .db.models import Workflow  # noqa: E402
from .db.session import migrate, missing_table, sessions  # noqa: E402
from .queue import Queue  # noqa: E402

if _collecting:
    gc.enable()

log = logging.getLogger("flowbuilder.scheduler")
_migrated: set[tuple[str, str]] = set()  # the databases this process has seen at the head


def handle(event: dict[str, Any], settings: Settings) -> dict[str, Any]:
    factory = sessions(settings.database_url, settings.db_secret_arn)
    queue = Queue(settings.queue_url)
    if event.get("type") == "sweep":
        sent = executions.sweep(factory, queue, settings=settings)
        return {"swept": len(sent)}
    if event.get("type") != "schedule":
        raise ValueError(f"unknown event type {event.get('type')!r}")
    key = f"schedule:{event['schedule']}:{event['scheduledTime']}"
    with factory() as session:
        workflow = session.scalar(select(Workflow).where(Workflow.name == event["workflow"]))
    if workflow is None:
        raise LookupError(f"schedule {event['schedule']}: no workflow named {event['workflow']!r}")
    execution, created = executions.create(factory, workflow, dict(event.get("input") or {}), key)
    if created or execution.enqueued_at is None:
        executions.enqueue(factory, queue, execution.id)
    return {"execution": execution.id, "created": created}


def _start_up(url: str, secret_arn: str) -> None:
    """The first connection (psycopg's import, the dialect's set-up) and the migration check, the collector
    paused (see above)."""
    collecting = gc.isenabled()
    gc.disable()
    try:
        migrate(url, secret_arn)
    finally:
        if collecting:
            gc.freeze()
            gc.enable()


def handler(event: dict[str, Any], context: Any = None) -> dict[str, Any]:
    """The Lambda entry point (ImageConfig.Command in the compiled template)."""
    resolve_secrets()
    settings = Settings.from_env()
    database = (settings.database_url, settings.db_secret_arn)
    if database not in _migrated:  # once per process: a warm invocation skips the revision query
        _start_up(*database)
        _migrated.add(database)
    try:
        result = handle(event, settings)
    except DBAPIError as exc:
        if not missing_table(exc):
            raise
        # The database was re-created or restored while this instance stayed warm: migrate it and try once
        # more, rather than fail every invocation until Lambda retires the instance.
        log.warning("the schema is missing (the database was re-created or restored); migrating it again")
        _migrated.discard(database)
        _start_up(*database)
        _migrated.add(database)
        result = handle(event, settings)
    log.info("%s", json.dumps({"event": event.get("type"), **result}))
    return result


def main() -> int:
    """`python -m flowbuilder.runtime.scheduler < event.json`: one invocation, as Lambda would make it
    (`fbc up` fires schedules this way)."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    event = json.loads(sys.stdin.read())
    try:
        handler(event)
    except (LookupError, ValueError) as exc:  # Lambda would record the failure; one line says it here
        log.error("%s: %s", event.get("type"), exc)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
