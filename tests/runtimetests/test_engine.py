"""The workflow engine on SQLite and PostgreSQL: steps, resume, failure, leases, the SSRF guard."""

from __future__ import annotations

import ipaddress
from datetime import timedelta

import pytest
from sqlalchemy import select, update

from flowbuilder.runtime.db.models import Execution, StepRun, Workflow, now
from flowbuilder.runtime.db.session import migrate, sessions
from flowbuilder.runtime.workflows import engine, http, leases

from .conftest import Sink, two_steps

LOCAL = (ipaddress.ip_network("127.0.0.1/32"),)


def _execution(url: str, definition: dict, data: dict | None = None) -> tuple[object, str]:  # type: ignore[type-arg]
    migrate(url)
    factory = sessions(url)
    with factory.begin() as session:
        workflow = Workflow(name="wf", version=1, definition=definition)
        session.add(workflow)
        session.flush()
        execution = Execution(workflow_id=workflow.id, workflow_version=1, definition=definition, state="queued",
                              input=data or {"n": 7}, attempts=0)
        session.add(execution)
        session.flush()
        return factory, execution.id


def test_two_steps_succeed_with_one_idempotency_key_per_step(database_url: str, sink: Sink) -> None:
    factory, execution_id = _execution(database_url, two_steps(sink.url))
    outcome = engine.run(factory, execution_id, "w1", engine.Limits(allowlist=LOCAL))  # type: ignore[arg-type]
    assert outcome == "succeeded"
    with factory() as session:  # type: ignore[attr-defined]
        execution = session.get(Execution, execution_id)
        assert (execution.state, execution.output, execution.lease_owner) == (
            "succeeded", {"n": 7, "path": "/hook"}, None)
        steps = session.scalars(select(StepRun).where(StepRun.execution_id == execution_id)).all()
        assert sorted((s.step, s.status) for s in steps) == [("call", "succeeded"), ("shape", "succeeded")]
    assert sink.keys == {f"{execution_id}:call": 1}
    assert sink.bodies == [{"n": 7}]  # a whole-string placeholder keeps the number a number


def test_redelivered_execution_resumes_after_its_last_finished_step(database_url: str, sink: Sink) -> None:
    factory, execution_id = _execution(database_url, two_steps(sink.url))
    with factory.begin() as session:  # type: ignore[attr-defined]
        session.add(StepRun(execution_id=execution_id, step="call", position=0, status="succeeded",
                            output={"echo": {"n": 1}, "path": "/earlier"}, attempts=1))
        session.execute(update(Execution).values(state="running", lease_owner="dead", attempts=1,
                                                 lease_expires_at=now() - timedelta(seconds=1)))
    assert engine.run(factory, execution_id, "w2", engine.Limits(allowlist=LOCAL)) == "succeeded"  # type: ignore[arg-type]
    assert sink.keys == {}  # the finished HTTP step did not run again
    with factory() as session:  # type: ignore[attr-defined]
        execution = session.get(Execution, execution_id)
        assert execution.output == {"n": 1, "path": "/earlier"} and execution.attempts == 2


def test_a_live_lease_keeps_others_out_and_a_finished_execution_is_not_rerun(database_url: str,
                                                                              sink: Sink) -> None:
    factory, execution_id = _execution(database_url, two_steps(sink.url))
    assert leases.claim(factory, execution_id, "w1", 60) is None  # type: ignore[arg-type]
    assert leases.claim(factory, execution_id, "w2", 60) == "busy"  # type: ignore[arg-type]
    leases.release(factory, execution_id, "w1")  # type: ignore[arg-type]
    assert engine.run(factory, execution_id, "w2", engine.Limits(allowlist=LOCAL)) == "succeeded"  # type: ignore[arg-type]
    assert engine.run(factory, execution_id, "w3", engine.Limits(allowlist=LOCAL)) == "finished"  # type: ignore[arg-type]
    assert engine.run(factory, "no-such-id", "w3", engine.Limits(allowlist=LOCAL)) == "missing"  # type: ignore[arg-type]
    assert sum(sink.keys.values()) == 1


def test_a_failing_step_fails_the_execution_once(database_url: str, sink: Sink) -> None:
    definition = {"steps": [{"type": "http", "name": "call", "url": f"{sink.url}/x", "retry": {"attempts": 2,
                                                                                             "backoff": 0.01}}]}
    factory, execution_id = _execution(database_url, definition)
    sink.fail_next = 5
    assert engine.run(factory, execution_id, "w1", engine.Limits(allowlist=LOCAL)) == "failed"  # type: ignore[arg-type]
    with factory() as session:  # type: ignore[attr-defined]
        execution = session.get(Execution, execution_id)
        assert execution.state == "failed"
        assert execution.error == f"step call: POST {sink.url}/x failed after 2 attempt(s): HTTP 503"
    assert engine.run(factory, execution_id, "w2", engine.Limits(allowlist=LOCAL)) == "finished"  # type: ignore[arg-type]


def test_retries_recover_from_transient_errors(database_url: str, sink: Sink) -> None:
    factory, execution_id = _execution(database_url, two_steps(sink.url))
    sink.fail_next = 2
    assert engine.run(factory, execution_id, "w1", engine.Limits(allowlist=LOCAL)) == "succeeded"  # type: ignore[arg-type]


def test_stop_request_releases_between_steps(database_url: str, sink: Sink) -> None:
    factory, execution_id = _execution(database_url, two_steps(sink.url))
    calls = iter([False, True])
    outcome = engine.run(factory, execution_id, "w1", engine.Limits(allowlist=LOCAL),  # type: ignore[arg-type]
                         should_stop=lambda: next(calls))
    assert outcome == "released"
    with factory() as session:  # type: ignore[attr-defined]
        execution = session.get(Execution, execution_id)
        assert (execution.state, execution.lease_owner) == ("queued", None)


@pytest.mark.parametrize("address", ["169.254.169.254", "169.254.170.2", "127.0.0.1", "10.0.0.1", "::1",
                                     "fd00::1", "192.168.1.1", "100.64.0.1"])
def test_ssrf_guard_refuses_internal_addresses(address: str) -> None:
    with pytest.raises(http.BlockedAddress):
        http.check_address(address, ())


def test_ssrf_guard_allowlist_opens_a_range_and_public_addresses_pass() -> None:
    http.check_address("127.0.0.1", LOCAL)
    http.check_address("93.184.216.34", ())
    with pytest.raises(http.BlockedAddress, match="link-local"):
        http.check_address("169.254.169.254", LOCAL)


def test_metadata_endpoint_step_fails_the_execution(database_url: str) -> None:
    definition = {"steps": [{"type": "http", "name": "steal", "method": "GET",
                             "url": "http://169.254.169.254/latest/meta-data/iam/security-credentials/"}]}
    factory, execution_id = _execution(database_url, definition)
    assert engine.run(factory, execution_id, "w1", engine.Limits()) == "failed"  # type: ignore[arg-type]
    with factory() as session:  # type: ignore[attr-defined]
        assert "link-local" in (session.get(Execution, execution_id).error or "")


def test_head_revision_constant_matches_alembic(database_url: str) -> None:
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    from flowbuilder.runtime.db import session as db

    config = Config()
    config.set_main_option("script_location", "flowbuilder.runtime.db:migrations")
    assert ScriptDirectory.from_config(config).get_current_head() == db.HEAD_REVISION
    migrate(database_url)
    assert db.current_revision(database_url) == db.HEAD_REVISION
