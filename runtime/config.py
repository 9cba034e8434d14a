"""Every environment variable the runtime reads, read here only (names and meanings: runtime/contract.py, which
the compiler imports too; tests/test_layers.py keeps other modules from reading the environment).

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
| FLOWBUILDER_VISIBILITY_SECONDS | poll mode: a message's visibility (min. 3), extended each third | 90 (below) |
| ECS_AGENT_URI | set by ECS in every container: poll mode sets task scale-in protection while busy | - |

The visibility's default outlasts a lease by half: a killed poll worker's message then comes back after its lease
expired (the lease expires within one lease of the last renewal, every third of it; the message within one
visibility of the last extension, every third of it), so the worker that receives it takes the execution over
at once instead of finding it busy and leaving it to the sweeper.

The scheduler gets FLOWBUILDER_WORKER_MODE and (once mode) FLOWBUILDER_WORKER_MAX_RUNNING of the worker that reads
its queue: the sweeper's rules follow them. FLOWBUILDER_SWEEP_QUEUED_AFTER is derived (executions.queued_after):
poll, visibility + poll wait (80 s); once, the task's start-up (120 s); set, it is used instead.
"""

from __future__ import annotations

import ipaddress
import math
import os
from dataclasses import dataclass, field
from urllib.parse import quote

from . import contract as c
from .secrets import read_reference

DEFAULT_SQLITE = "sqlite:///.flowbuilder/flowbuilder.db"


def _int(name: str, default: int) -> int:
    value = os.environ.get(name)
    return int(value) if value else default


def database_url(environ: dict[str, str] | None = None) -> str:
    env = os.environ if environ is None else environ
    if env.get(c.DATABASE_URL):
        url = env[c.DATABASE_URL]
        # postgres://... (what hosted databases hand out) -> SQLAlchemy's psycopg 3 dialect
        for prefix in ("postgres://", "postgresql://"):
            if url.startswith(prefix):
                return "postgresql+psycopg://" + url[len(prefix):]
        return url
    if env.get(c.DB_HOST):
        # No credentials in the URL: they come from FLOWBUILDER_DB_SECRET_ARN per connection (db/session.py).
        host = env[c.DB_HOST]
        return (f"postgresql+psycopg://{host}:{env.get(c.DB_PORT) or '5432'}/"
                f"{quote(env.get(c.DB_NAME) or 'flowbuilder', safe='')}")
    return DEFAULT_SQLITE


def resolve_secrets() -> bool:
    """Fill FLOWBUILDER_DATABASE_URL (ultra, Lambda) from its store, and each FLOWBUILDER_SECRET_<NAME> reference
    into <NAME>: Lambda has no ECS-style Secrets, so the runtime reads them itself, once per cold start, before
    Settings.from_env. A value already set is not read again (a warm invocation reads nothing). True when the
    environment changed, so Settings read before it are stale. The RDS credentials (FLOWBUILDER_DB_SECRET_ARN)
    are not read here: see secrets.DatabaseCredentials."""
    env = os.environ
    changed = False
    if env.get(c.DATABASE_URL_SECRET) and not env.get(c.DATABASE_URL):
        env[c.DATABASE_URL] = read_reference(env[c.DATABASE_URL_SECRET], env.get(c.DATABASE_URL_SOURCE))
        changed = True
    for name, reference in list(env.items()):
        target = name[len(c.SECRET_REF_PREFIX):]
        if name.startswith(c.SECRET_REF_PREFIX) and target not in env:
            env[target] = read_reference(reference)
            changed = True
    return changed


def default_visibility(lease_seconds: int) -> int:
    """Half a lease longer than the lease, and at least a minute (see the module's docstring)."""
    return max(60, math.ceil(1.5 * lease_seconds))


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
    visibility_seconds: int = 0  # poll mode; 0: default_visibility(lease_seconds), set in __post_init__
    poll_wait: int = 20
    sweep_queued_after: int | None = None  # None: executions.queued_after derives it
    api_keys: tuple[str, ...] = ()
    http_allowlist: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] = field(default=())
    base_path: str = ""
    max_body_bytes: int = 1024 * 1024
    max_attempts: int = 10
    max_output_bytes: int = 256 * 1024
    host: str = "0.0.0.0"  # in a container the load balancer reaches the task on its own interface
    port: int = 8000
    ecs_agent_uri: str = ""

    def __post_init__(self) -> None:
        if self.visibility_seconds <= 0:  # derived from the lease, so it follows a lease given in code too
            object.__setattr__(self, "visibility_seconds", default_visibility(self.lease_seconds))

    @classmethod
    def from_env(cls) -> Settings:
        env = os.environ
        raw_keys = env.get(c.API_KEYS) or env.get(c.SPEC_API_KEYS, "")
        keys = tuple(k.strip() for k in raw_keys.split(",") if k.strip())
        allow = tuple(ipaddress.ip_network(cidr.strip(), strict=False)
                      for cidr in env.get(c.HTTP_ALLOWLIST, "").split(",") if cidr.strip())
        lease = _int(c.LEASE_SECONDS, 60)
        queued_after = env.get(c.SWEEP_QUEUED_AFTER)
        return cls(
            app=env.get(c.APP, ""), environment=env.get(c.ENVIRONMENT, ""), role=env.get(c.ROLE, ""),
            database_url=database_url(),
            db_secret_arn="" if env.get(c.DATABASE_URL) else env.get(c.DB_SECRET_ARN, ""),
            queue_url=env.get(c.QUEUE_URL, ""), worker_mode=env.get(c.WORKER_MODE, "poll"),
            worker_timeout=_int(c.WORKER_TIMEOUT, 900), worker_concurrency=_int(c.WORKER_CONCURRENCY, 1),
            worker_max_running=_int(c.WORKER_MAX_RUNNING, 0), execution_id=env.get(c.EXECUTION_ID, ""),
            lease_seconds=lease,
            visibility_seconds=max(3, int(env[c.VISIBILITY_SECONDS])) if env.get(c.VISIBILITY_SECONDS) else 0,
            poll_wait=_int(c.POLL_WAIT, 20), sweep_queued_after=int(queued_after) if queued_after else None,
            api_keys=keys, http_allowlist=allow, base_path=env.get(c.BASE_PATH, "").rstrip("/"),
            max_body_bytes=_int(c.MAX_BODY_BYTES, 1024 * 1024), max_attempts=_int(c.MAX_ATTEMPTS, 10),
            max_output_bytes=_int(c.MAX_OUTPUT_BYTES, 256 * 1024), host=env.get(c.HOST, "0.0.0.0"),
            port=_int(c.PORT, 8000), ecs_agent_uri=env.get(c.ECS_AGENT_URI, ""),
        )
