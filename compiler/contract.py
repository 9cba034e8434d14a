"""The contract between the compiled stacks and runtime/: environment variable names, roles, entry points.

The compiler sets these; runtime/config.py reads them. A contract test checks both sides, so rename here
and in the runtime together.
"""

from __future__ import annotations

PREFIX = "FLOWBUILDER_"

APP = "FLOWBUILDER_APP"
ENVIRONMENT = "FLOWBUILDER_ENVIRONMENT"
ROLE = "FLOWBUILDER_ROLE"  # api | worker | scheduler
QUEUE_URL = "FLOWBUILDER_QUEUE_URL"  # where executions are sent (api, scheduler) or read from (worker)
BASE_PATH = "FLOWBUILDER_BASE_PATH"  # the load balancer's path prefix for the API
# poll (standard) | once (ultra, one task per message). The scheduler gets the mode (and, once, the running limit)
# of the worker that reads its queue: the sweeper's re-send rules follow them (runtime/executions.py).
WORKER_MODE = "FLOWBUILDER_WORKER_MODE"
WORKER_TIMEOUT = "FLOWBUILDER_WORKER_TIMEOUT"  # seconds one claim of an execution may run; then it fails
WORKER_CONCURRENCY = "FLOWBUILDER_WORKER_CONCURRENCY"
# once mode: executions running at once across all tasks (the spec's scaling max). Pipes starts one task per
# message with no concurrency limit; the runtime admits a task's claim only below this count.
WORKER_MAX_RUNNING = "FLOWBUILDER_WORKER_MAX_RUNNING"
EXECUTION_ID = "FLOWBUILDER_EXECUTION_ID"  # once mode: the message body, set by the Pipe's container override

# Database, standard profile (RDS): host, port and name in plain env, and the ARN of the secret RDS manages
# (JSON username/password). No user or password variable: RDS rotates the password every 7 days, so the
# runtime reads the secret for each new connection (cached, read again when the database refuses it).
DB_HOST = "FLOWBUILDER_DB_HOST"
DB_PORT = "FLOWBUILDER_DB_PORT"
DB_NAME = "FLOWBUILDER_DB_NAME"
DB_SECRET_ARN = "FLOWBUILDER_DB_SECRET_ARN"
# Database, ultra profile (external): the whole URL from SSM SecureString or Secrets Manager.
DATABASE_URL = "FLOWBUILDER_DATABASE_URL"  # ECS: injected through Secrets
DATABASE_URL_SECRET = "FLOWBUILDER_DATABASE_URL_SECRET"  # Lambda: parameter name or secret ARN, read at run time
DATABASE_URL_SOURCE = "FLOWBUILDER_DATABASE_URL_SOURCE"  # ssm | secretsmanager
# Lambda has no Secrets field: user secrets become references the runtime resolves at cold start.
SECRET_REF_PREFIX = "FLOWBUILDER_SECRET_"

ROLES = ("api", "worker", "scheduler")

# Container commands (ECS) and Lambda handlers, all in the one runtime image.
COMMANDS = {
    "api": ["python", "-m", "flowbuilder.runtime.api"],
    "worker": ["python", "-m", "flowbuilder.runtime.worker"],
}
LAMBDA_ENTRYPOINT = ["python", "-m", "awslambdaric"]
LAMBDA_HANDLERS = {
    "api": "flowbuilder.runtime.api.lambda_handler.handler",
    "scheduler": "flowbuilder.runtime.scheduler.handler",
}
# Events the scheduler handler receives from EventBridge Scheduler.
SCHEDULE_EVENT = "schedule"
SWEEP_EVENT = "sweep"
# How often the sweeper runs: each of its recovery paths is its bound (a lease, UNSENT_GRACE, queued_after in
# runtime/executions.py) plus up to this. One Lambda invocation and one database round trip per run; every minute
# would take 4 minutes off those paths for five times the runs, and they are failure paths.
SWEEP_MINUTES = 5
SWEEP_RATE = f"rate({SWEEP_MINUTES} minutes)"

# Worker mode per profile dispatch: a long-polling service, or one task per message started by a Pipe.
WORKER_MODES = {"autoscaled-service": "poll", "pipe": "once"}
