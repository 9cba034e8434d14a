"""The contract between the compiled stacks and the runtime, imported by both sides: the environment variables
(name and meaning), the events the scheduler handler takes and the entry points of the one runtime image.

The compiler (compiler/contract.py, emit/, fbc up) sets the variables marked SET; runtime/config.py's Settings
is the only reader of all of them. tests/test_layers.py keeps that so, and tests/runtimetests/test_worker.py
checks that every name here is read.
"""

from __future__ import annotations

PREFIX = "FLOWBUILDER_"

# Set by the compiler (templates, fbc up) ----------------------------------------------------------------------
APP = "FLOWBUILDER_APP"  # the application, for logs
ENVIRONMENT = "FLOWBUILDER_ENVIRONMENT"  # the environment, for logs
ROLE = "FLOWBUILDER_ROLE"  # api | worker | scheduler
QUEUE_URL = "FLOWBUILDER_QUEUE_URL"  # where executions are sent (api, scheduler) or read from (worker)
BASE_PATH = "FLOWBUILDER_BASE_PATH"  # the load balancer's path prefix for the API
# poll (standard) | once (ultra, one task per message). The scheduler gets the mode (and, once, the running limit)
# of the worker that reads its queue: the sweeper's re-send rules follow them (runtime/executions.py).
WORKER_MODE = "FLOWBUILDER_WORKER_MODE"
WORKER_TIMEOUT = "FLOWBUILDER_WORKER_TIMEOUT"  # seconds one claim of an execution may run; then it fails
WORKER_CONCURRENCY = "FLOWBUILDER_WORKER_CONCURRENCY"  # executions at once per process (poll)
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
DATABASE_URL = "FLOWBUILDER_DATABASE_URL"  # ECS: injected through Secrets; fbc up: the local database
DATABASE_URL_SECRET = "FLOWBUILDER_DATABASE_URL_SECRET"  # Lambda: parameter name or secret ARN, read at run time
DATABASE_URL_SOURCE = "FLOWBUILDER_DATABASE_URL_SOURCE"  # ssm | secretsmanager
# Lambda has no Secrets field: a user secret NAME becomes FLOWBUILDER_SECRET_NAME=<reference>, resolved into NAME
# at cold start.
SECRET_REF_PREFIX = "FLOWBUILDER_SECRET_"
SET = (APP, ENVIRONMENT, ROLE, QUEUE_URL, BASE_PATH, WORKER_MODE, WORKER_TIMEOUT, WORKER_CONCURRENCY,
       WORKER_MAX_RUNNING, EXECUTION_ID, DB_HOST, DB_PORT, DB_NAME, DB_SECRET_ARN, DATABASE_URL,
       DATABASE_URL_SECRET, DATABASE_URL_SOURCE)

# Tuning, with defaults in runtime/config.py (set by hand, or by fbc up and the tests) -------------------------
LEASE_SECONDS = "FLOWBUILDER_LEASE_SECONDS"  # how long a claim lasts without renewal
VISIBILITY_SECONDS = "FLOWBUILDER_VISIBILITY_SECONDS"  # poll: a received message's visibility, extended every third
POLL_WAIT = "FLOWBUILDER_POLL_WAIT"  # poll: SQS long-poll wait
SWEEP_QUEUED_AFTER = "FLOWBUILDER_SWEEP_QUEUED_AFTER"  # seconds a sent execution waits unclaimed before a re-send
API_KEYS = "FLOWBUILDER_API_KEYS"  # comma-separated bearer keys; else API_KEYS, the spec's runtime secret
SPEC_API_KEYS = "API_KEYS"
HTTP_ALLOWLIST = "FLOWBUILDER_HTTP_ALLOWLIST"  # CIDRs HTTP steps may reach despite the SSRF guard
MAX_BODY_BYTES = "FLOWBUILDER_MAX_BODY_BYTES"  # the largest request body the API reads (413 past it)
MAX_ATTEMPTS = "FLOWBUILDER_MAX_ATTEMPTS"  # claims of one execution; past it, it fails
MAX_OUTPUT_BYTES = "FLOWBUILDER_MAX_OUTPUT_BYTES"  # a step's output, an HTTP step's request and response body
HOST = "FLOWBUILDER_HOST"  # the API's listening address
PORT = "PORT"  # the API's port (the usual name: App Runner, Cloud Run and Lambda's Web Adapter set it)
ECS_AGENT_URI = "ECS_AGENT_URI"  # set by ECS in every container: poll mode's task scale-in protection

# Events the scheduler handler receives from EventBridge Scheduler.
SCHEDULE_EVENT = "schedule"
SWEEP_EVENT = "sweep"

# Entry points of the runtime image: container commands (ECS) and Lambda handlers.
COMMANDS = {
    "api": ["python", "-m", "flowbuilder.runtime.api"],
    "worker": ["python", "-m", "flowbuilder.runtime.worker"],
}
LAMBDA_ENTRYPOINT = ["python", "-m", "awslambdaric"]
LAMBDA_HANDLERS = {
    "api": "flowbuilder.runtime.api.lambda_handler.handler",
    "scheduler": "flowbuilder.runtime.scheduler.handler",
}
