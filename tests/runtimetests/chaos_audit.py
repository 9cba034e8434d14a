"""The chaos test's audit of lease-relevant writes: database triggers record every UPDATE of an execution and
every step row inserted, with the database's time and, on PostgreSQL, the writer (each worker process connects
with its own application_name, and its lease owner names its PID). `judge` then names each write a fenced
worker must not make: a step row, an outcome or a release written without a live lease of the writer's own,
a claim that took a live lease, a finished execution changed; and counts takeovers and revived leases.

SQLite records no writer (one connection string for all), and its writers read the clock before they wait for
the write lock: there a write is judged by the execution's state and owner, and writes after the lease's
expiry by the file's clock are counted (see judge).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import text
from sqlalchemy.orm import Session, sessionmaker

_COLUMNS = ("kind", "execution_id", "step", "old_state", "new_state", "old_owner", "new_owner", "old_expires",
            "new_expires", "at", "wall", "writer")

POSTGRES = [
    """CREATE TABLE chaos_audit (
        id bigserial PRIMARY KEY, kind text NOT NULL, execution_id text NOT NULL, step text,
        old_state text, new_state text, old_owner text, new_owner text,
        old_expires timestamptz, new_expires timestamptz,
        at timestamptz NOT NULL DEFAULT now(), wall timestamptz NOT NULL DEFAULT clock_timestamp(),
        writer text NOT NULL DEFAULT current_setting('application_name'))""",
    """CREATE FUNCTION chaos_audit_step() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        INSERT INTO chaos_audit (kind, execution_id, step, old_state, old_owner, old_expires)
        SELECT 'step', NEW.execution_id, NEW.step, e.state, e.lease_owner, e.lease_expires_at
        FROM executions e WHERE e.id = NEW.execution_id;
        RETURN NULL;
    END $$""",
    """CREATE TRIGGER chaos_audit_step AFTER INSERT ON step_runs
        FOR EACH ROW EXECUTE FUNCTION chaos_audit_step()""",
    """CREATE FUNCTION chaos_audit_execution() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        INSERT INTO chaos_audit (kind, execution_id, old_state, new_state, old_owner, new_owner, old_expires,
                                 new_expires)
        VALUES ('update', NEW.id, OLD.state, NEW.state, OLD.lease_owner, NEW.lease_owner, OLD.lease_expires_at,
                NEW.lease_expires_at);
        RETURN NULL;
    END $$""",
    """CREATE TRIGGER chaos_audit_execution AFTER UPDATE ON executions
        FOR EACH ROW EXECUTE FUNCTION chaos_audit_execution()""",
]

_SQLITE_NOW = "strftime('%Y-%m-%d %H:%M:%f', 'now')"
SQLITE = [
    f"""CREATE TABLE chaos_audit (
        id INTEGER PRIMARY KEY AUTOINCREMENT, kind TEXT NOT NULL, execution_id TEXT NOT NULL, step TEXT,
        old_state TEXT, new_state TEXT, old_owner TEXT, new_owner TEXT, old_expires TEXT, new_expires TEXT,
        at TEXT NOT NULL DEFAULT ({_SQLITE_NOW}), wall TEXT NOT NULL DEFAULT ({_SQLITE_NOW}),
        writer TEXT NOT NULL DEFAULT '')""",
    """CREATE TRIGGER chaos_audit_step AFTER INSERT ON step_runs BEGIN
        INSERT INTO chaos_audit (kind, execution_id, step, old_state, old_owner, old_expires)
        SELECT 'step', NEW.execution_id, NEW.step, state, lease_owner, lease_expires_at
        FROM executions WHERE id = NEW.execution_id;
    END""",
    """CREATE TRIGGER chaos_audit_execution AFTER UPDATE ON executions BEGIN
        INSERT INTO chaos_audit (kind, execution_id, old_state, new_state, old_owner, new_owner, old_expires,
                                 new_expires)
        VALUES ('update', NEW.id, OLD.state, NEW.state, OLD.lease_owner, NEW.lease_owner, OLD.lease_expires_at,
                NEW.lease_expires_at);
    END""",
]


def install(sessions: sessionmaker[Session]) -> None:
    with sessions.begin() as session:
        dialect = session.get_bind().dialect.name
        for statement in POSTGRES if dialect == "postgresql" else SQLITE:
            session.execute(text(statement))


def _moment(value: Any) -> datetime | None:
    """A timestamp in UTC: PostgreSQL's come aware, SQLite's as text in UTC."""
    if value is None:
        return None
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value.astimezone(UTC) if value.tzinfo is not None else value.replace(tzinfo=UTC)


@dataclass(frozen=True)
class Write:
    kind: str  # step (a step row inserted; old_* is the execution at that moment) or update (of an execution)
    execution_id: str
    step: str | None
    old_state: str | None
    new_state: str | None
    old_owner: str | None
    new_owner: str | None
    old_expires: datetime | None
    new_expires: datetime | None
    at: datetime  # the database's now(): on PostgreSQL the start of the writing transaction
    wall: datetime  # the database's clock when the trigger ran
    writer: str  # application_name (PostgreSQL), else ""


def read(sessions: sessionmaker[Session]) -> list[Write]:
    with sessions() as session:
        rows = session.execute(text(f"SELECT {', '.join(_COLUMNS)} FROM chaos_audit ORDER BY id")).all()
    times = ("old_expires", "new_expires", "at", "wall")
    return [Write(**{name: _moment(value) if name in times else value
                     for name, value in zip(_COLUMNS, row, strict=True)}) for row in rows]


def owner_pid(owner: str | None) -> int | None:
    """The PID in a lease owner, `host:pid:nonce` (runtime/worker/modes.py)."""
    if not owner:
        return None
    try:
        return int(owner.rsplit(":", 2)[-2])
    except (ValueError, IndexError):
        return None


@dataclass
class Verdict:
    violations: list[str] = field(default_factory=list)
    succeeded: Counter[str] = field(default_factory=Counter)  # committed transitions to succeeded, per execution
    claims: int = 0
    takeovers: int = 0  # claims of an expired lease held by another owner
    revived: int = 0  # renewals of a lease that had already expired
    late: list[timedelta] = field(default_factory=list)  # writes after the lease's expiry by the clock (see judge)
    steps: int = 0
    audited: int = 0


# SQLite's timestamps have milliseconds: the trigger's clock may read up to 1 ms behind the writer's.
_ROUNDING = timedelta(milliseconds=5)


def judge(writes: list[Write], pids: dict[str, int] | None) -> Verdict:
    """`pids`: application_name -> PID of each worker process (PostgreSQL), a write by any other connection
    being the driver's (the sweeper); None where writers are unknown (SQLite).

    PostgreSQL: a step row, an outcome or a release needs the writer's own lease, live at the database's now()
    (the start of the writing transaction, the time the fence reads). SQLite: the fence reads the host's clock
    before the statement waits for the database's one write lock, so a write that waited (behind a stopped
    worker holding the lock, up to the 30 s busy timeout) lands after its lease's expiry by the file's clock;
    and nobody can have taken the execution meanwhile, since a claim or a sweep takes the same lock and changes
    the owner, which the fence checks. There a write needs a running execution with an owner (the fence in the
    same transaction makes it the writer's), and late ones are counted, not failed."""
    verdict = Verdict(audited=len(writes))
    timed = pids is not None

    def writer(w: Write) -> int | None:  # a worker's PID, 0 for the driver, None when unknown
        return None if pids is None else pids.get(w.writer, 0)

    def live(w: Write) -> bool:
        if w.old_state != "running" or w.old_owner is None or w.old_expires is None:
            return False
        if w.old_expires <= w.wall:
            verdict.late.append(w.wall - w.old_expires)
        return not timed or w.old_expires > w.at

    def mine(w: Write) -> bool:
        return writer(w) is None or writer(w) == owner_pid(w.old_owner)

    def say(w: Write, what: str) -> None:
        lease = f"lease until {w.old_expires:%H:%M:%S.%f}" if w.old_expires else "no lease"
        verdict.violations.append(
            f"{w.execution_id} {what}: state {w.old_state}->{w.new_state or w.old_state}, owner {w.old_owner}"
            f"->{w.new_owner}, {lease}, database now {w.at:%H:%M:%S.%f}, writer {w.writer or '?'} (pid {writer(w)})")

    for w in writes:
        if w.kind == "step":
            verdict.steps += 1
            if not live(w):
                say(w, f"step {w.step} recorded without a live lease")
            elif not mine(w):
                say(w, f"step {w.step} recorded by another process than the lease holder")
            continue
        changed = w.old_state != w.new_state or w.old_owner != w.new_owner
        if w.old_state in ("succeeded", "failed"):
            if changed:
                say(w, "finished execution changed")
            continue
        if w.new_state in ("succeeded", "failed") and w.old_state != w.new_state:
            if w.new_state == "succeeded":
                verdict.succeeded[w.execution_id] += 1
            if not live(w):
                say(w, f"outcome {w.new_state} written without a live lease")
            elif not mine(w):
                say(w, f"outcome {w.new_state} written by another process than the lease holder")
        elif w.new_state == "running" and w.new_owner is not None and w.new_owner != w.old_owner:
            verdict.claims += 1
            if w.old_owner is not None:
                verdict.takeovers += 1
                if w.old_expires is not None and w.old_expires > w.wall + _ROUNDING:
                    say(w, "claim took a live lease")
        elif w.old_state == "running" and w.new_state == "queued":
            who = writer(w)
            if who is not None and who == owner_pid(w.old_owner):
                if not live(w):
                    say(w, "released without a live lease")
            elif who is not None and w.old_expires is not None and w.old_expires > w.wall:
                say(w, "live lease taken away (queued again)")
        elif (not changed and w.old_state == "running" and w.old_expires is not None and w.new_expires is not None
              and w.new_expires > w.old_expires and w.old_expires <= w.wall):
            verdict.revived += 1
    return verdict
