"""Two ways to consume executions.

poll (standard): long-polls SQS with bounded concurrency; extends a message's visibility while its
execution runs; deletes it only after the execution's outcome is committed; on SIGTERM stops receiving,
lets running steps finish, releases the rest and makes their messages visible again, within the stop timeout.
On ECS (ECS_AGENT_URI) the task is protected from scale-in while it holds a message (protection.py).

A duplicate message for an execution another worker is running (busy) is deleted, not left to climb its
receive count into the dead-letter queue; an exception in a worker thread is logged with its execution.

once (ultra): the Pipe started this task for one message, whose body (the execution ID) is in
FLOWBUILDER_EXECUTION_ID; Pipes already deleted the message. Claim, run, exit; a duplicate (busy) is
ignored: the task exits 0. With
FLOWBUILDER_WORKER_MAX_RUNNING (the spec's scaling max) the claim is admitted only while fewer executions
hold a live lease; a refused task exits at once, and admitted tasks keep claiming queued executions until
none is left (leases.claim_bounded explains why nothing is stranded). On SIGTERM (Fargate Spot's two-minute
warning) the current step finishes, the execution is released and sent to the queue again.

Both modes stop an execution that runs past FLOWBUILDER_WORKER_TIMEOUT (engine.Limits.timeout).
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import threading
import uuid
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait

from sqlalchemy.orm import Session, sessionmaker

from ..config import Settings, resolve_secrets
from ..db.session import migrate, sessions
from ..executions import send
from ..queue import Message, Queue
from ..workflows import engine, leases
from .protection import ScaleInProtection, protection_minutes

log = logging.getLogger("flowbuilder.worker")

def _owner() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def _stop_on_sigterm() -> threading.Event:
    stop = threading.Event()

    def handler(signum: int, _frame: object) -> None:
        log.info("signal %s: stopping after the current steps", signum)
        stop.set()

    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)
    return stop


def _limits(settings: Settings) -> engine.Limits:
    return engine.Limits(lease_seconds=settings.lease_seconds, allowlist=settings.http_allowlist,
                         timeout=settings.worker_timeout, max_attempts=settings.max_attempts,
                         max_output_bytes=settings.max_output_bytes)


def _nothing() -> None:
    pass


def once(settings: Settings, ready: Callable[[], None] = _nothing) -> int:
    """`ready` is called once the database is connected and migrated (__main__ resumes garbage collection)."""
    if resolve_secrets():
        settings = Settings.from_env()
    execution_id = settings.execution_id.strip()
    if not execution_id:
        log.error("once mode needs FLOWBUILDER_EXECUTION_ID")
        return 2
    stop = _stop_on_sigterm()
    migrate(settings.database_url, settings.db_secret_arn)
    factory = sessions(settings.database_url, settings.db_secret_arn)
    ready()
    owner, limits, bound = _owner(), _limits(settings), settings.worker_max_running
    if bound > 0:
        refusal = leases.claim_bounded(factory, execution_id, owner, limits.lease_seconds, bound)
        if refusal == "deferred":  # Pipes deleted the message; a running task claims it when it is done
            log.info("execution %s: deferred (%d executions running, the limit)", execution_id, bound)
            return 0
        outcome: str = refusal or engine.execute(factory, execution_id, owner, limits, stop.is_set)
    else:
        outcome = engine.run(factory, execution_id, owner, limits, stop.is_set)
    log.info("execution %s: %s", execution_id, outcome)
    if outcome == "released":
        send(factory, Queue(settings.queue_url), execution_id)  # Pipes deleted the original
    # lost: another task holds it now, or its lease expired and the sweeper sends it again; nothing to do here
    if outcome == "missing":
        return 1  # a poison message: nothing to run
    if bound > 0 and outcome in ("succeeded", "failed"):
        _drain(factory, Queue(settings.queue_url), owner, limits, bound, stop)
    return 0


def _drain(factory: sessionmaker[Session], queue: Queue, owner: str, limits: engine.Limits, bound: int,
           stop: threading.Event) -> None:
    """An admitted task: run the oldest queued executions, under the limit, until none is queued. Their own
    messages, if still coming, find them finished or busy."""
    while not stop.is_set():
        execution_id = leases.claim_next(factory, owner, limits.lease_seconds, bound)
        if execution_id is None:
            return
        outcome = engine.execute(factory, execution_id, owner, limits, stop.is_set)
        log.info("execution %s: %s (drained from the queue)", execution_id, outcome)
        if outcome in ("released", "lost"):
            if outcome == "released":
                send(factory, queue, execution_id)
            return


def _handle(factory: sessionmaker[Session], queue: Queue, message: Message, settings: Settings,
            stop: threading.Event, protection: ScaleInProtection | None) -> str:
    try:
        return _run_message(factory, queue, message, settings, stop)
    finally:
        if protection is not None:
            protection.idle()


def _run_message(factory: sessionmaker[Session], queue: Queue, message: Message, settings: Settings,
                 stop: threading.Event) -> str:
    extend_stop = threading.Event()

    hidden = settings.visibility_seconds  # extended every third of it while the execution runs

    def extend() -> None:
        while not extend_stop.wait(hidden / 3):
            try:
                queue.extend(message, hidden)
            except Exception:  # the next attempt will tell; the lease protects the execution meanwhile
                log.warning("could not extend visibility of %s", message.body)

    extender = threading.Thread(target=extend, daemon=True)
    extender.start()
    try:
        outcome = engine.run(factory, message.body.strip(), _owner(), _limits(settings), stop.is_set)
    finally:
        extend_stop.set()
    if outcome in ("succeeded", "failed", "finished"):
        queue.delete(message)  # the outcome is committed: the message has done its job
    elif outcome == "busy":
        # A duplicate (a concurrent POST, a sweep, a re-sent backlog): a live worker holds the lease and its
        # own message. Left in flight, this one would climb its receive count into the dead-letter queue
        # while that execution runs on; if the holder dies, its lease expires and the sweeper queues and
        # sends the execution again.
        queue.delete(message)
    elif outcome == "released":
        queue.extend(message, 0)  # visible again now: another worker claims it at once
    elif outcome == "lost":
        # Visible again now: a worker that receives it finds the new holder busy (and deletes this duplicate) or
        # the expired lease, which it takes over without waiting for a sweep. If the new holder already deleted
        # the message (the stall outlasted its visibility), the receipt handle is stale: nothing to do.
        try:
            queue.extend(message, 0)
        except Exception as exc:
            log.info("execution %s: its message is gone (%s)", message.body, type(exc).__name__)
    # missing: a poison message, left to reach the dead-letter queue
    log.info("execution %s: %s", message.body, outcome)
    return outcome


def _report(execution_id: str) -> Callable[[Future[str]], None]:
    """A done-callback: an exception in a worker thread is logged with its execution (its message, still in
    flight, is received again after the visibility timeout)."""

    def done(future: Future[str]) -> None:
        if future.cancelled():
            return
        exc = future.exception()
        if exc is not None:
            log.error("execution %s: %s: %s", execution_id, type(exc).__name__, exc, exc_info=exc)

    return done


def poll(settings: Settings, ready: Callable[[], None] = _nothing) -> int:
    if resolve_secrets():
        settings = Settings.from_env()
    stop = _stop_on_sigterm()
    migrate(settings.database_url, settings.db_secret_arn)
    factory = sessions(settings.database_url, settings.db_secret_arn)
    ready()
    queue = Queue(settings.queue_url)
    agent = settings.ecs_agent_uri
    protection = ScaleInProtection(agent, protection_minutes(settings.worker_timeout)) if agent else None
    slots = max(1, settings.worker_concurrency)
    running: set[Future[str]] = set()
    with ThreadPoolExecutor(max_workers=slots) as pool:
        while not stop.is_set():
            if protection is not None:
                protection.tick()
            running = {f for f in running if not f.done()}
            free = slots - len(running)
            if free <= 0:  # until a slot frees (a fixed 0.2 s sleep capped one slot at 5 executions/s), or a stop
                wait(running, timeout=0.2, return_when=FIRST_COMPLETED)
                continue
            for message in queue.receive(free, wait=settings.poll_wait, visibility=settings.visibility_seconds):
                if protection is not None:
                    protection.busy()  # before the claim: ECS must not pick this task from now on
                future = pool.submit(_handle, factory, queue, message, settings, stop, protection)
                future.add_done_callback(_report(message.body.strip()))
                running.add(future)
        log.info("stopping: %d execution(s) finishing their current step", len(running))
    return 0
