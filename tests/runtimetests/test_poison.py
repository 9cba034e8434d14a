"""Poison steps (issue 12, items 2 and 3): whatever a step evaluates to or fails with, its execution ends
`failed` with the reason, instead of the error escaping the engine and the execution looping `running`."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
from pydantic import ValidationError
from sqlalchemy import select, update

from conftest import json_server
from flowbuilder.runtime.config import Settings
from flowbuilder.runtime.db.models import Execution, StepRun
from flowbuilder.runtime.workflows import engine, transform
from flowbuilder.runtime.workflows.definition import Definition

from .conftest import fresh_postgres_url
from .test_engine import LOCAL, _execution

HUGE = "@" + " | {a: @, b: @}" * 23  # 346 characters; its value as JSON is 185 MB
NESTED = "(" * 600 + "@" + ")" * 600  # under the 4,096-character limit; RecursionError in JMESPath's parser


@pytest.fixture
def poison_url() -> Iterator[str]:
    """A local service answering what PostgreSQL cannot store: /nul (a NUL character), /nan, /big (300 KiB)."""
    deep: Any = "bottom"
    for _ in range(300):  # past MAX_DEPTH: stored, every read of it would answer 500
        deep = [deep]
    answers: dict[str, Any] = {"/nul": {"s": "a\x00b"}, "/nan": {"x": float("nan")}, "/big": {"s": "x" * 300_000},
                               "/ok": {"ok": True}, "/deep": {"d": deep}}
    server, url = json_server(lambda request, body: (200, answers[request.path]))
    yield url
    server.shutdown()


def _run(url: str, definition: dict[str, Any],
         limits: engine.Limits | None = None) -> tuple[str, Execution, list[StepRun]]:
    factory, execution_id = _execution(url, definition)
    outcome = engine.run(factory, execution_id, "w1", limits or engine.Limits(allowlist=LOCAL))  # type: ignore[arg-type]
    with factory() as session:  # type: ignore[attr-defined]
        execution = session.get(Execution, execution_id)
        steps = list(session.scalars(select(StepRun).where(StepRun.execution_id == execution_id)))
        session.expunge_all()
    return outcome, execution, steps


def _transform(expression: str) -> dict[str, Any]:
    return {"steps": [{"type": "transform", "name": "t", "expression": expression}]}


@pytest.mark.parametrize(("path", "reason"), [("/nul", "NUL character"), ("/nan", "not strict JSON"),
                                              ("/deep", "nested more than 100 levels")])
def test_http_step_answering_nul_or_nan_fails_the_step(database_url: str, poison_url: str, path: str,
                                                        reason: str) -> None:
    outcome, execution, steps = _run(database_url, {"steps": [
        {"type": "http", "name": "call", "url": f"{poison_url}{path}", "retry": {"attempts": 1}}]})
    assert outcome == "failed" and execution.state == "failed" and execution.lease_owner is None
    assert execution.error is not None and reason in execution.error and execution.error.startswith("step call:")
    assert [(s.step, s.status, s.error) for s in steps] == [("call", "failed", execution.error)]


def test_http_response_over_the_output_limit_fails_the_step(database_url: str, poison_url: str) -> None:
    outcome, execution, steps = _run(database_url, {"steps": [
        {"type": "http", "name": "call", "url": f"{poison_url}/big", "retry": {"attempts": 1}}]})
    assert outcome == "failed" and "response body over 262144 bytes" in (execution.error or "")
    assert [s.status for s in steps] == ["failed"]


def test_transform_producing_infinity_fails_the_step(database_url: str) -> None:
    outcome, execution, steps = _run(database_url, _transform("{x: `1e999`}"))
    assert outcome == "failed" and execution.state == "failed"
    assert "step t: output is not strict JSON" in (execution.error or "")
    assert [(s.step, s.status) for s in steps] == [("t", "failed")]


def test_deeply_nested_expression_fails_instead_of_escaping(database_url: str) -> None:
    outcome, execution, _ = _run(database_url, _transform(NESTED))  # stored before saving checked it
    assert outcome == "failed" and execution.state == "failed"
    assert "nested too deeply" in (execution.error or "")
    with pytest.raises(ValidationError, match="nested too deeply"):
        Definition.model_validate(_transform(NESTED))


def test_huge_output_fails_at_the_limit_without_building_it(database_url: str) -> None:
    assert len(HUGE) == 346
    started = time.monotonic()
    outcome, execution, steps = _run(database_url, _transform(HUGE))
    assert outcome == "failed" and execution.error == "step t: output over 262144 bytes of JSON"
    assert [s.status for s in steps] == ["failed"]
    assert time.monotonic() - started < 5  # was minutes and 185 MB


def test_output_limit_comes_from_limits(database_url: str) -> None:
    outcome, execution, _ = _run(database_url, _transform("input"), engine.Limits(max_output_bytes=5))
    assert outcome == "failed" and execution.error == "step t: output over 5 bytes of JSON"


def test_building_large_values_is_bounded_during_evaluation() -> None:
    with pytest.raises(transform.TooLarge, match="flattened list"):
        transform.evaluate("@" + " | [@, @][]" * 40, [1])  # 2**40 elements
    with pytest.raises(transform.TooLarge, match="join"):
        transform.evaluate("@" + " | join('', [@, @])" * 40, "ab")
    with pytest.raises(transform.TooLarge, match="to_string"):
        transform.evaluate(f"to_string({HUGE})", 1)
    assert transform.evaluate("[[`1`], [`2`]][] | join('-', [to_string(@), 'x'])", {}) == "[1,2]-x"


def test_execution_gives_up_after_max_attempts(database_url: str) -> None:
    factory, execution_id = _execution(database_url, _transform("input"))
    with factory.begin() as session:  # type: ignore[attr-defined]
        session.execute(update(Execution).values(attempts=3))
    limits = engine.Limits(max_attempts=3)
    assert engine.run(factory, execution_id, "w1", limits) == "failed"  # type: ignore[arg-type]
    with factory() as session:  # type: ignore[attr-defined]
        execution = session.get(Execution, execution_id)
        assert (execution.state, execution.error, execution.attempts) == ("failed", "gave up after 3 attempts", 4)
        assert session.scalars(select(StepRun)).all() == []  # no step ran


def test_execution_within_max_attempts_runs(database_url: str) -> None:
    factory, execution_id = _execution(database_url, _transform("input"))
    with factory.begin() as session:  # type: ignore[attr-defined]
        session.execute(update(Execution).values(attempts=2))
    assert engine.run(factory, execution_id, "w1", engine.Limits(max_attempts=3)) == "succeeded"  # type: ignore[arg-type]


def test_an_output_the_database_refuses_fails_the_step(monkeypatch: pytest.MonkeyPatch) -> None:
    """Past the checks (switched off here), PostgreSQL's DataError while storing fails the step too."""
    url = fresh_postgres_url()
    monkeypatch.setattr(engine, "bounded_json", lambda value, limit, what="output": "")
    outcome, execution, steps = _run(url, _transform("`\"a\\u0000b\"`"))
    assert outcome == "failed" and execution.state == "failed"
    assert "step t: could not store its output: DataError" in (execution.error or "")
    assert [(s.step, s.status) for s in steps] == [("t", "failed")]


def test_settings_read_the_limits(monkeypatch: pytest.MonkeyPatch) -> None:
    assert (Settings().max_attempts, Settings().max_output_bytes) == (10, 262144)
    monkeypatch.setenv("FLOWBUILDER_MAX_ATTEMPTS", "4")
    monkeypatch.setenv("FLOWBUILDER_MAX_OUTPUT_BYTES", "1000")
    settings = Settings.from_env()
    assert (settings.max_attempts, settings.max_output_bytes) == (4, 1000)


def test_the_worker_passes_its_limits_to_the_engine() -> None:
    from flowbuilder.runtime.config import Settings
    from flowbuilder.runtime.worker.modes import _limits

    limits = _limits(Settings(max_attempts=3, max_output_bytes=1234))
    assert (limits.max_attempts, limits.max_output_bytes) == (3, 1234)
