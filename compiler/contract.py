"""The compiler's side of the contract with runtime/: the names come from runtime/contract.py, which both
sides import (the runtime image ships without the compiler); what only the compiler decides is here."""

from __future__ import annotations

from flowbuilder.runtime.contract import (
    API_KEYS,
    APP,
    BASE_PATH,
    COMMANDS,
    DATABASE_URL,
    DATABASE_URL_SECRET,
    DATABASE_URL_SOURCE,
    DB_HOST,
    DB_NAME,
    DB_PORT,
    DB_SECRET_ARN,
    ENVIRONMENT,
    EXECUTION_ID,
    HOST,
    HTTP_ALLOWLIST,
    LAMBDA_ENTRYPOINT,
    LAMBDA_HANDLERS,
    POLL_WAIT,
    PORT,
    PREFIX,
    QUEUE_URL,
    ROLE,
    SCHEDULE_EVENT,
    SECRET_REF_PREFIX,
    SET,
    SWEEP_EVENT,
    WORKER_CONCURRENCY,
    WORKER_MAX_RUNNING,
    WORKER_MODE,
    WORKER_TIMEOUT,
)

# How often the sweeper runs: each of its recovery paths is its bound (a lease, UNSENT_GRACE, queued_after in
# runtime/executions.py) plus up to this. One Lambda invocation and one database round trip per run; every minute
# would take 4 minutes off those paths for five times the runs, and they are failure paths.
SWEEP_MINUTES = 5
SWEEP_RATE = f"rate({SWEEP_MINUTES} minutes)"

# Worker mode per profile dispatch: a long-polling service, or one task per message started by a Pipe.
WORKER_MODES = {"autoscaled-service": "poll", "pipe": "once"}

__all__ = [
    "API_KEYS",
    "APP",
    "BASE_PATH",
    "COMMANDS",
    "DATABASE_URL",
    "DATABASE_URL_SECRET",
    "DATABASE_URL_SOURCE",
    "DB_HOST",
    "DB_NAME",
    "DB_PORT",
    "DB_SECRET_ARN",
    "ENVIRONMENT",
    "EXECUTION_ID",
    "HOST",
    "HTTP_ALLOWLIST",
    "LAMBDA_ENTRYPOINT",
    "LAMBDA_HANDLERS",
    "POLL_WAIT",
    "PORT",
    "PREFIX",
    "QUEUE_URL",
    "ROLE",
    "SCHEDULE_EVENT",
    "SECRET_REF_PREFIX",
    "SET",
    "SWEEP_EVENT",
    "SWEEP_MINUTES",
    "SWEEP_RATE",
    "WORKER_CONCURRENCY",
    "WORKER_MAX_RUNNING",
    "WORKER_MODE",
    "WORKER_MODES",
    "WORKER_TIMEOUT",
]
