"""The sweeper's rules (issue 12, item 12), without processes: the derived queued-after and the visibility it
reads, the once-mode cap at free slots, expired leases before a backlog, send times from the database's clock.
The recovery paths themselves are measured in test_recovery.py."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select

from flowbuilder.runtime import executions
from flowbuilder.runtime.config import Settings, default_visibility
from flowbuilder.runtime.db.models import Execution, now
from flowbuilder.runtime.db.session import clock

from .conftest import call_then_shape, seed, set_rows


def test_queued_after_is_derived_from_what_delays_a_claim(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("FLOWBUILDER_SWEEP_QUEUED_AFTER", "FLOWBUILDER_WORKER_MODE", "FLOWBUILDER_VISIBILITY_SECONDS",
                 "FLOWBUILDER_POLL_WAIT", "FLOWBUILDER_LEASE_SECONDS"):
        monkeypatch.delenv(name, raising=False)
    assert executions.queued_after() == timedelta(seconds=90 + 20)  # poll: visibility (1.5 leases) + poll wait
    monkeypatch.setenv("FLOWBUILDER_VISIBILITY_SECONDS", "90")
    monkeypatch.setenv("FLOWBUILDER_POLL_WAIT", "5")
    assert executions.queued_after() == timedelta(seconds=95)
    monkeypatch.setenv("FLOWBUILDER_WORKER_MODE", "once")
    assert executions.queued_after() == executions.TASK_START_UP == timedelta(seconds=120)  # not the worker timeout
    monkeypatch.setenv("FLOWBUILDER_WORKER_TIMEOUT", "3600")
    assert executions.queued_after() == timedelta(seconds=120)
    monkeypatch.setenv("FLOWBUILDER_SWEEP_QUEUED_AFTER", "900")  # the explicit override wins
    assert executions.queued_after() == timedelta(seconds=900)


@pytest.mark.parametrize(("lease", "raw", "expected"), [(None, None, 90), ("60", "1", 3), ("60", "45", 45),
                                                       ("3", None, 60), ("100", None, 150), ("100", "70", 70)])
def test_visibility_outlasts_the_lease_unless_set(lease: str | None, raw: str | None, expected: int,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """By default a killed poll worker's message comes back only after its lease expired (1.5 leases, at least a
    minute), so the worker that receives it takes the execution over instead of finding it busy; the sweeper's
    queued-after reads the same Settings as the workers."""
    for name, value in (("FLOWBUILDER_LEASE_SECONDS", lease), ("FLOWBUILDER_VISIBILITY_SECONDS", raw)):
        if value is None:
            monkeypatch.delenv(name, raising=False)
        else:
            monkeypatch.setenv(name, value)
    settings = Settings.from_env()
    assert settings.visibility_seconds == expected
    assert raw is not None or 2 * settings.visibility_seconds / 3 >= settings.lease_seconds
    assert default_visibility(settings.lease_seconds) >= 1.5 * settings.lease_seconds



def test_settings_made_in_code_derive_the_visibility_from_their_lease() -> None:
    assert Settings(lease_seconds=100).visibility_seconds == 150
    assert Settings().visibility_seconds == 90 and Settings(visibility_seconds=5).visibility_seconds == 5


class Outbox:
    def __init__(self) -> None:
        self.sent: list[str] = []

    def send(self, execution_id: str) -> None:
        self.sent.append(execution_id)


def test_once_mode_sends_unclaimed_executions_only_into_free_slots(database_url: str,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """At the running limit a task started for an unclaimed execution is refused, and the holders claim it when
    they are done: the sweeper sends no more unclaimed executions than there are free slots, oldest first, and
    always sends an expired lease."""
    monkeypatch.setenv("FLOWBUILDER_WORKER_MODE", "once")
    monkeypatch.setenv("FLOWBUILDER_WORKER_MAX_RUNNING", "3")
    monkeypatch.delenv("FLOWBUILDER_SWEEP_QUEUED_AFTER", raising=False)
    factory, ids = seed(database_url, call_then_shape("http://127.0.0.1:9/"), 8)
    holders, dead, waiting = ids[:2], ids[2], ids[3:]
    long_ago = now() - timedelta(hours=1)
    set_rows(factory, holders, state="running", lease_owner="alive", lease_expires_at=now() + timedelta(minutes=5))
    set_rows(factory, [dead], state="running", lease_owner="dead", lease_expires_at=now() - timedelta(seconds=5))
    for position, execution_id in enumerate(waiting):  # sent long ago, in this order, never claimed
        set_rows(factory, [execution_id], enqueued_at=long_ago, created_at=long_ago + timedelta(seconds=position))
    outbox = Outbox()
    sent = executions.sweep(factory, outbox)  # type: ignore[arg-type]
    assert sorted(sent) == sorted([dead, waiting[0]])  # 3 - 2 live leases = 1 free slot, and the expired lease
    set_rows(factory, holders, lease_expires_at=now() - timedelta(seconds=1))  # the holders died too
    sent = executions.sweep(factory, outbox)  # type: ignore[arg-type]
    assert sorted(sent) == sorted([*holders, *waiting[1:4]])  # every lease expired: 3 free slots
    monkeypatch.setenv("FLOWBUILDER_WORKER_MAX_RUNNING", "0")  # no limit: every unclaimed one
    set_rows(factory, waiting, enqueued_at=long_ago)
    assert sorted(executions.sweep(factory, outbox)) == sorted(waiting)  # type: ignore[arg-type]


def test_expired_leases_are_sent_before_a_backlog_of_unclaimed_executions(database_url: str,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("FLOWBUILDER_WORKER_MODE", raising=False)
    monkeypatch.delenv("FLOWBUILDER_SWEEP_QUEUED_AFTER", raising=False)
    factory, ids = seed(database_url, call_then_shape("http://127.0.0.1:9/"), 6)
    backlog, (expired, unsent) = ids[:4], ids[4:]
    long_ago = now() - timedelta(hours=1)
    set_rows(factory, backlog, enqueued_at=long_ago, created_at=long_ago)  # older than the other two
    set_rows(factory, [expired], state="running", lease_owner="dead", lease_expires_at=now() - timedelta(seconds=1),
         enqueued_at=now())
    set_rows(factory, [unsent], created_at=now() - timedelta(minutes=5))
    sent = executions.sweep(factory, Outbox(), limit=2)  # type: ignore[arg-type]
    assert {expired, unsent} <= set(sent) and len(sent) == 4  # one limit, oldest first, would send the backlog only
    with factory() as session:
        assert session.scalar(select(func.count()).where(Execution.enqueued_at == long_ago)) == 2  # next sweep


def test_send_times_are_the_databases_clock(database_url: str) -> None:
    factory, (execution_id,) = seed(database_url, call_then_shape("http://127.0.0.1:9/"), 1)
    with factory() as session:
        before = clock(session)
    assert executions.enqueue(factory, Outbox(), execution_id)  # type: ignore[arg-type]
    with factory() as session:
        after = clock(session)
        row = session.get(Execution, execution_id)
        assert row is not None and row.enqueued_at is not None
        stored = row.enqueued_at if row.enqueued_at.tzinfo else row.enqueued_at.replace(tzinfo=before.tzinfo)
    assert before <= stored <= after
