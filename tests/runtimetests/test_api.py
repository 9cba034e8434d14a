"""The API over HTTP semantics (FastAPI's TestClient), on SQLite and PostgreSQL, with SQS on moto."""

from __future__ import annotations

import contextlib
import json
import threading
from typing import Any

import boto3
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import event, update

from flowbuilder.runtime.api.app import create_app
from flowbuilder.runtime.config import Settings
from flowbuilder.runtime.db.models import Execution, Workflow
from flowbuilder.runtime.queue import Queue

from .conftest import two_steps
from .test_api_fuzz import RecordingQueue

KEY = "test-key-123"
AUTH = {"Authorization": f"Bearer {KEY}"}


@pytest.fixture
def api(database_url: str, sqs_queue: dict[str, str]) -> tuple[TestClient, Any]:
    sqs = boto3.client("sqs", region_name="us-east-1", endpoint_url=sqs_queue["AWS_ENDPOINT_URL"],
                       aws_access_key_id="testing", aws_secret_access_key="testing")
    settings = Settings(database_url=database_url, queue_url=sqs_queue["queue_url"], api_keys=(KEY, "other"),
                        base_path="/api")
    return TestClient(create_app(settings, Queue(sqs_queue["queue_url"], sqs))), (sqs, sqs_queue["queue_url"])


def test_health_and_readiness_need_no_key(api: tuple[TestClient, Any]) -> None:
    client, _ = api
    assert client.get("/api/healthz").json()["status"] == "ok"
    assert client.get("/api/readyz").json() == {"database": "ok", "queue": "ok"}


def test_every_other_route_needs_a_valid_key(api: tuple[TestClient, Any]) -> None:
    client, _ = api
    assert client.get("/api/workflows").status_code == 401
    assert client.get("/api/workflows", headers={"Authorization": "Bearer wrong"}).status_code == 401
    assert client.get("/api/workflows", headers={"Authorization": KEY}).status_code == 401
    assert client.get("/api/workflows", headers={"Authorization": "Bearer other"}).status_code == 200


def test_workflow_crud_and_an_execution_through_the_queue(api: tuple[TestClient, Any]) -> None:
    client, (sqs, queue_url) = api
    created = client.post("/api/workflows", json={"name": "greet", "definition": two_steps("http://example.com")},
                          headers=AUTH)
    assert created.status_code == 201, created.text
    workflow = created.json()
    assert workflow["version"] == 1
    assert client.post("/api/workflows", json={"name": "greet", "definition": two_steps("http://x.org")},
                       headers=AUTH).status_code == 409
    bad = client.post("/api/workflows", json={"name": "bad", "definition": {"steps": []}}, headers=AUTH)
    assert bad.status_code == 422
    updated = client.put(f"/api/workflows/{workflow['id']}",
                         json={"name": "greet", "definition": two_steps("http://example.org")}, headers=AUTH)
    assert updated.json()["version"] == 2

    started = client.post(f"/api/workflows/{workflow['id']}/executions", json={"input": {"n": 1}},
                          headers={**AUTH, "Idempotency-Key": "abc"})
    assert started.status_code == 202
    again = client.post(f"/api/workflows/{workflow['id']}/executions", json={"input": {"n": 1}},
                        headers={**AUTH, "Idempotency-Key": "abc"})
    assert again.status_code == 202 and again.json()["id"] == started.json()["id"]
    messages = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=1)["Messages"]
    assert [m["Body"] for m in messages] == [started.json()["id"]]  # sent once

    shown = client.get(f"/api/executions/{started.json()['id']}", headers=AUTH).json()
    assert (shown["state"], shown["input"], shown["steps"]) == ("queued", {"n": 1}, [])
    listed = client.get("/api/executions", params={"workflow_id": workflow["id"], "limit": 1}, headers=AUTH).json()
    assert (listed["total"], len(listed["items"])) == (1, 1)
    assert client.get("/api/executions", params={"state": "nope"}, headers=AUTH).status_code == 422
    assert client.get("/api/executions/missing", headers=AUTH).status_code == 404
    assert client.delete(f"/api/workflows/{workflow['id']}", headers=AUTH).status_code == 409  # one is queued
    with client.app.state.sessions.begin() as session:  # type: ignore[attr-defined]
        session.execute(update(Execution).values(state="succeeded"))
    assert client.delete(f"/api/workflows/{workflow['id']}", headers=AUTH).status_code == 204
    assert client.get(f"/api/workflows/{workflow['id']}", headers=AUTH).status_code == 404


def test_openapi_is_published(api: tuple[TestClient, Any]) -> None:
    client, _ = api
    spec = client.get("/api/openapi.json").json()  # under the API's path, where the routing sends it
    assert client.get("/openapi.json").status_code == 404
    assert "/api/workflows/{workflow_id}/executions" in spec["paths"]


def _workflow_id(client: TestClient, name: str = "greet") -> str:
    created = client.post("/api/workflows", json={"name": name, "definition": two_steps("http://example.com")},
                          headers=AUTH)
    assert created.status_code == 201, created.text
    return str(created.json()["id"])


def test_an_idempotency_key_reused_with_another_body_is_refused(api: tuple[TestClient, Any]) -> None:
    client, _ = api
    path = f"/api/workflows/{_workflow_id(client)}/executions"
    headers = {**AUTH, "Idempotency-Key": "k1"}
    first = client.post(path, json={"input": {"n": 1, "m": [1, 2]}}, headers=headers)
    assert first.status_code == 202
    same = client.post(path, json={"input": {"m": [1, 2], "n": 1}}, headers=headers)  # key order is no change
    assert same.status_code == 202 and same.json()["id"] == first.json()["id"]
    other = client.post(path, json={"input": {"n": 2, "m": [1, 2]}}, headers=headers)
    assert other.status_code == 422
    assert "different request body" in other.json()["detail"]
    listed = client.get("/api/executions", headers=AUTH).json()
    assert listed["total"] == 1 and listed["items"][0]["input"] == {"n": 1, "m": [1, 2]}


def test_concurrent_updates_of_one_version_lose_nothing(api: tuple[TestClient, Any]) -> None:
    """Two PUTs that both read version 1 (a barrier holds each just before its UPDATE until both have read):
    one answers version 2, the other 409, and the stored definition is the winner's."""
    client, _ = api
    workflow_id = _workflow_id(client)
    both_read = threading.Barrier(2, timeout=10)

    def hold(*_: Any) -> None:
        with contextlib.suppress(threading.BrokenBarrierError):
            both_read.wait()

    answers: dict[str, Any] = {}

    def put(url: str) -> None:
        answers[url] = client.put(f"/api/workflows/{workflow_id}", json={"name": "greet", "definition": two_steps(url)},
                                  headers=AUTH)

    event.listen(Workflow, "before_update", hold)
    try:
        threads = [threading.Thread(target=put, args=(url,)) for url in ("http://a.example", "http://b.example")]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
    finally:
        event.remove(Workflow, "before_update", hold)
    codes = sorted(r.status_code for r in answers.values())
    assert codes == [200, 409], {u: (r.status_code, r.text) for u, r in answers.items()}
    winner = next(u for u, r in answers.items() if r.status_code == 200)
    assert answers[winner].json()["version"] == 2
    assert "changed by another request" in next(r for r in answers.values() if r.status_code == 409).json()["detail"]
    stored = client.get(f"/api/workflows/{workflow_id}", headers=AUTH).json()
    assert stored["version"] == 2 and stored["definition"]["steps"][0]["url"].startswith(winner)
    again = client.put(f"/api/workflows/{workflow_id}", json={"name": "greet", "definition": two_steps("http://c.org")},
                       headers=AUTH)
    assert again.json()["version"] == 3  # a later edit, having read version 2, goes through


def test_a_workflow_with_unfinished_executions_is_not_deleted(api: tuple[TestClient, Any]) -> None:
    client, _ = api
    workflow_id = _workflow_id(client)
    started = client.post(f"/api/workflows/{workflow_id}/executions", json={"input": {"n": 1}}, headers=AUTH)
    execution_id = started.json()["id"]
    factory = client.app.state.sessions  # type: ignore[attr-defined]
    for state in ("queued", "running"):
        with factory.begin() as session:
            session.execute(update(Execution).where(Execution.id == execution_id).values(state=state))
        refused = client.delete(f"/api/workflows/{workflow_id}", headers=AUTH)
        assert refused.status_code == 409, (state, refused.text)
        assert "queued or running executions" in refused.json()["detail"]
        assert client.get(f"/api/executions/{execution_id}", headers=AUTH).json()["state"] == state
        assert client.get(f"/api/workflows/{workflow_id}", headers=AUTH).status_code == 200
    with factory.begin() as session:
        session.execute(update(Execution).where(Execution.id == execution_id).values(state="succeeded"))
    assert client.delete(f"/api/workflows/{workflow_id}", headers=AUTH).status_code == 204
    assert client.get(f"/api/workflows/{workflow_id}", headers=AUTH).status_code == 404
    assert client.delete(f"/api/workflows/{workflow_id}", headers=AUTH).status_code == 404


@pytest.mark.parametrize("value", ["a\u0000b", float("nan"), float("inf"), float("-inf")])
def test_input_that_json_or_postgresql_cannot_hold_answers_422(api: tuple[TestClient, Any], value: Any) -> None:
    client, _ = api
    path = f"/api/workflows/{_workflow_id(client)}/executions"
    for data in ({"x": value}, {"deep": [1, {"y": value}]}):
        body = json.dumps({"input": data})  # allow_nan: NaN and Infinity as Python's parser reads them
        answer = client.post(path, content=body, headers={**AUTH, "Content-Type": "application/json"})
        assert answer.status_code == 422, answer.text
        assert "NUL" in answer.text or "NaN and Infinity" in answer.text
    definition = two_steps("http://example.com")
    definition["steps"][0]["body"] = {"v": value}
    answer = client.post("/api/workflows", content=json.dumps({"name": "odd", "definition": definition}),
                         headers={**AUTH, "Content-Type": "application/json"})
    assert answer.status_code == 422, answer.text
    assert client.get("/api/executions", headers=AUTH).json()["total"] == 0


def test_a_body_over_the_limit_answers_413_before_it_is_read(database_url: str) -> None:
    settings = Settings(database_url=database_url, api_keys=(KEY,), base_path="/api", max_body_bytes=1000)
    client = TestClient(create_app(settings, RecordingQueue()))  # type: ignore[arg-type]
    assert Settings().max_body_bytes == 1024 * 1024
    workflow_id = _workflow_id(client)
    path = f"/api/workflows/{workflow_id}/executions"
    small = client.post(path, json={"input": {"s": "x" * 900}}, headers=AUTH)
    assert small.status_code == 202, small.text
    big = client.post(path, json={"input": {"s": "x" * 2000}}, headers=AUTH)  # by its Content-Length
    assert big.status_code == 413 and "larger than 1000 bytes" in big.json()["detail"]
    chunks = iter([b'{"input": {"s": "', b"x" * 800, b"x" * 800, b'"}}'])  # chunked: no Content-Length
    streamed = client.post(path, content=chunks, headers={**AUTH, "Content-Type": "application/json"})
    assert streamed.status_code == 413
    assert client.get("/api/executions", headers=AUTH).json()["total"] == 1


def test_step_names_and_expressions_are_checked_when_a_workflow_is_saved(api: tuple[TestClient, Any]) -> None:
    client, _ = api
    for step, why in (({"type": "transform", "name": "my-step", "expression": "input"}, "no '-'"),
                      ({"type": "transform", "name": "t", "expression": "steps.call.["}, "not a valid JMESPath")):
        answer = client.post("/api/workflows", json={"name": "w", "definition": {"steps": [step]}}, headers=AUTH)
        assert answer.status_code == 422 and why in answer.text, answer.text


def test_a_nul_character_in_an_id_or_key_is_answered_as_any_unknown_value(api: tuple[TestClient, Any]) -> None:
    """PostgreSQL's driver refuses to send a NUL character (500 before): a path or query value with one names no
    row, as on SQLite; an Idempotency-Key with one could not be stored, so it is refused."""
    client, _ = api
    workflow_id = _workflow_id(client)
    definition = {"name": "w", "definition": two_steps("http://example.com")}
    for method, path, body in (("GET", "/api/workflows/a%00b", None), ("PUT", "/api/workflows/%00", definition),
                               ("DELETE", "/api/workflows/%00", None),
                               ("POST", "/api/workflows/%00/executions", {"input": {}}),
                               ("GET", "/api/executions/%00", None)):
        answer = client.request(method, path, json=body, headers=AUTH)
        assert answer.status_code == 404, (method, path, answer.text)
    listed = client.get("/api/executions", params={"workflow_id": "\x00"}, headers=AUTH)
    assert listed.status_code == 200 and listed.json()["total"] == 0
    keyed = client.post(f"/api/workflows/{workflow_id}/executions", json={"input": {}},
                        headers={**AUTH, "Idempotency-Key": b"a\x00b"})  # type: ignore[dict-item]
    assert keyed.status_code == 422 and "NUL" in keyed.text
    assert client.get("/api/executions", headers=AUTH).json()["total"] == 0


def test_json_nested_past_the_limit_answers_422_and_at_the_limit_reads_back(api: tuple[TestClient, Any]) -> None:
    """An input or definition nested too deep for the answer's serializer was stored, and every read of it then
    answered 500; past MAX_DEPTH it is refused, and at MAX_DEPTH it is stored and read back."""
    from flowbuilder.runtime.api.limits import MAX_DEPTH

    client, _ = api

    def nested(depth: int) -> Any:  # `depth` levels of arrays and objects, the outermost an object
        value: Any = 0
        for level in range(depth - 1):
            value = [value] if level % 2 else {"k": value}
        return {"v": value}

    path = f"/api/workflows/{_workflow_id(client)}/executions"
    deepest = client.post(path, json={"input": nested(MAX_DEPTH)}, headers=AUTH)
    assert deepest.status_code == 202, deepest.text
    shown = client.get(f"/api/executions/{deepest.json()['id']}", headers=AUTH)
    assert shown.status_code == 200 and shown.json()["input"] == nested(MAX_DEPTH)
    for depth in (MAX_DEPTH + 1, 500, 900):
        answer = client.post(path, json={"input": nested(depth)}, headers=AUTH)
        assert answer.status_code == 422 and f"more than {MAX_DEPTH} levels" in answer.text, (depth, answer.text)
    definition = two_steps("http://example.com")
    definition["steps"][0]["body"] = nested(MAX_DEPTH - 3)  # under {"steps": [{"body": ...}]}
    stored = client.post("/api/workflows", json={"name": "deep", "definition": definition}, headers=AUTH)
    assert stored.status_code == 201, stored.text
    assert client.get(f"/api/workflows/{stored.json()['id']}", headers=AUTH).status_code == 200
    definition["steps"][0]["body"] = nested(MAX_DEPTH - 2)
    answer = client.post("/api/workflows", json={"name": "deeper", "definition": definition}, headers=AUTH)
    assert answer.status_code == 422 and f"more than {MAX_DEPTH} levels" in answer.text, answer.text
    assert client.get("/api/executions", headers=AUTH).json()["total"] == 1
    assert client.get("/api/workflows", headers=AUTH).status_code == 200
