"""Every environment variable the runtime reads, in one place (names from compiler/contract.py, which the
compiler sets; a contract test checks both sides).

| variable | meaning | default |
|---|---|---|
| FLOWBUILDER_APP / FLOWBUILDER_ENVIRONMENT | the application and environment, for logs | "" |
| FLOWBUILDER_ROLE | api, worker or scheduler | - |
| FLOWBUILDER_DATABASE_URL | SQLAlchemy URL (ultra); else built from FLOWBUILDER_DB_* | sqlite under .flowbuilder/ |
| FLOWBUILDER_DB_HOST/PORT/NAME | RDS connection without credentials (standard profile) | - / 5432 / flowbuilder |
| FLOWBUILDER_DB_SECRET_ARN | the RDS-managed secret (JSON username/password), read per new connection and cached | - |
| FLOWBUILDER_DATABASE_URL_SECRET / _SOURCE | Lambda: where the URL is kept (ssm or secretsmanager) | - |
| FLOWBUILDER_QUEUE_URL | the executions queue | - |
| FLOWBUILDER_WORKER_MODE | poll (standard) or once (ultra); the scheduler's sweeper gets its queue's too | poll |
| FLOWBUILDER_WORKER_TIMEOUT | seconds one execution may run per claim; past it the execution fails | 900 |
| FLOWBUILDER_WORKER_CONCURRENCY | executions at once per process (poll) | 1 |
| FLOWBUILDER_WORKER_MAX_RUNNING | once mode: executions holding a live lease at once, across tasks (0: no bound) | 0 |
| FLOWBUILDER_EXECUTION_ID | once mode: the execution to run (the message body) | - |
| FLOWBUILDER_LEASE_SECONDS | how long a claim on an execution lasts without renewal | 60 |
| FLOWBUILDER_API_KEYS, else API_KEYS | comma-separated bearer keys (API_KEYS: the spec's runtime secret) | - |
| FLOWBUILDER_HTTP_ALLOWLIST | comma-separated CIDRs HTTP steps may reach despite the SSRF guard | - |
| FLOWBUILDER_BASE_PATH | path prefix the load balancer routes to the API | "" |
| FLOWBUILDER_MAX_BODY_BYTES | the largest request body the API reads; larger ones answer 413 | 1048576 |
| FLOWBUILDER_MAX_ATTEMPTS | claims of one execution (deliveries, take-overs); past it, it fails (0: no bound) | 10 |
| FLOWBUILDER_MAX_OUTPUT_BYTES | a step's output as JSON, and an HTTP step's request and response body | 262144 |
| FLOWBUILDER_HOST / PORT | the API's listening address (`fbc up`: 127.0.0.1) | 0.0.0.0 / 8000 |
| FLOWBUILDER_SWEEP_QUEUED_AFTER | seconds a sent execution stays queued, unclaimed, before a re-send | see below |
| FLOWBUILDER_POLL_WAIT | poll mode: SQS long-poll wait in seconds | 20 |
| FLOWBUILDER_VISIBILITY_SECONDS | poll mode: a received message's visibility (at least 3), extended every third | 60 |
| ECS_AGENT_URI | set by ECS in every container: poll mode sets task scale-in protection while busy | - |

The scheduler gets FLOWBUILDER_WORKER_MODE and (once mode) FLOWBUILDER_WORKER_MAX_RUNNING of the worker that reads
its queue: the sweeper's rules follow them. FLOWBUILDER_SWEEP_QUEUED_AFTER is derived (executions.queued_after):
poll, visibility + poll wait (80 s); once, the task's start-up (120 s); set, it is used instead.
"""

from __future__ import annotations

import ipaddress
import os
from dataclasses import dataclass, field
from urllib.parse import quote

ENV_PREFIX = "FLOWBUILDER_"
DEFAULT_SQLITE = "sqlite:///.flowbuilder/flowbuilder.db"


def _int(name: str, default: int) -> int:
    value = os.environ.get(name)
    return int(value) if value else default


def poll_wait_seconds() -> int:
    """poll mode: how long one receive waits for a message (worker/modes.py reads the same variable)."""
    return _int("FLOWBUILDER_POLL_WAIT", 20)


def visibility_seconds() -> int:
    """poll mode: how long a received message stays hidden; worker/modes.py (visibility) reads the same variable,
    with the same default and floor, and a test keeps the two equal."""
    return max(3, _int("FLOWBUILDER_VISIBILITY_SECONDS", 60))


def database_url(environ: dict[str, str] | None = None) -> str:
    env = os.environ if environ is None else environ
    if env.get("FLOWBUILDER_DATABASE_URL"):
        url = env["FLOWBUILDER_DATABASE_URL"]
        # postgres://... (what hosted databases hand out) -> SQLAlchemy's psycopg 3 dialect
        for prefix in ("postgres://", "postgresql://"):
            if url.startswith(prefix):
                return "postgresql+psycopg://" + url[len(prefix):]
        return url
    if env.get("FLOWBUILDER_DB_HOST"):
        # No credentials in the URL: they come from FLOWBUILDER_DB_SECRET_ARN per connection (db/session.py).
        host = env["FLOWBUILDER_DB_HOST"]
        return (f"postgresql+psycopg://{host}:{env.get('FLOWBUILDER_DB_PORT') or '5432'}/"
                f"{quote(env.get('FLOWBUILDER_DB_NAME') or 'flowbuilder', safe='')}")
    return DEFAULT_SQLITE


@dataclass(frozen=True)
class Settings:
    app: str = ""
    environment: str = ""
    role: str = ""
    database_url: str = DEFAULT_SQLITE
    db_secret_arn: str = ""  # with database_url from FLOWBUILDER_DB_HOST: where the credentials are
    queue_url: str = ""
    worker_mode: str = "poll"
    worker_timeout: int = 900
    worker_concurrency: int = 1
    worker_max_running: int = 0
    execution_id: str = ""
    lease_seconds: int = 60
    api_keys: tuple[str, ...] = ()
    http_allowlist: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] = field(default=())
    base_path: str = ""
    max_body_bytes: int = 1024 * 1024
    max_attempts: int = 10
    max_output_bytes: int = 256 * 1024

    @classmethod
    def from_env(cls) -> Settings:
        env = os.environ
        raw_keys = env.get("FLOWBUILDER_API_KEYS") or env.get("API_KEYS", "")
        keys = tuple(k.strip() for k in raw_keys.split(",") if k.strip())
        allow = tuple(ipaddress.ip_network(c.strip(), strict=False)
                      for c in env.get("FLOWBUILDER_HTTP_ALLOWLIST", "").split(",") if c.strip())
        return cls(
            app=env.get("FLOWBUILDER_APP", ""), environment=env.get("FLOWBUILDER_ENVIRONMENT", ""),
            role=env.get("FLOWBUILDER_ROLE", ""), database_url=database_url(),
            db_secret_arn="" if env.get("FLOWBUILDER_DATABASE_URL") else env.get("FLOWBUILDER_DB_SECRET_ARN", ""),
            queue_url=env.get("FLOWBUILDER_QUEUE_URL", ""),
            worker_mode=env.get("FLOWBUILDER_WORKER_MODE", "poll"),
            worker_timeout=_int("FLOWBUILDER_WORKER_TIMEOUT", 900),
            worker_concurrency=_int("FLOWBUILDER_WORKER_CONCURRENCY", 1),
            worker_max_running=_int("FLOWBUILDER_WORKER_MAX_RUNNING", 0),
            execution_id=env.get("FLOWBUILDER_EXECUTION_ID", ""), lease_seconds=_int("FLOWBUILDER_LEASE_SECONDS", 60),
            api_keys=keys, http_allowlist=allow, base_path=env.get("FLOWBUILDER_BASE_PATH", "").rstrip("/"),
            max_body_bytes=_int("FLOWBUILDER_MAX_BODY_BYTES", 1024 * 1024),
            max_attempts=_int("FLOWBUILDER_MAX_ATTEMPTS", 10),
            max_output_bytes=_int("FLOWBUILDER_MAX_OUTPUT_BYTES", 256 * 1024),
        )
