"""Every timestamp the API returns is RFC 3339 with an offset, the same moment when written and when read back,
on SQLite (which stores text without an offset) and PostgreSQL (issue 17)."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

from fastapi.testclient import TestClient

from flowbuilder.runtime.api.app import create_app
from flowbuilder.runtime.config import Settings
from flowbuilder.runtime.db.models import Execution
from flowbuilder.runtime.db.session import sessions

from .test_api_fuzz import RecordingQueue

KEY = "timestamps"
AUTH = {"Authorization": f"Bearer {KEY}"}
# RFC 3339's date-time: a full date, a full time (fraction optional), and an offset, Z or +hh:mm.
RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$")
STAMPS = ("created_at", "updated_at")


def _check(body: dict[str, Any]) -> dict[str, datetime]:
    moments = {}
    for name in STAMPS:
        assert RFC3339.match(body[name]), f"{name}: {body[name]!r} is not RFC 3339 with an offset"
        moments[name] = datetime.fromisoformat(body[name])
        assert moments[name].utcoffset() is not None
    return moments


def test_timestamps_read_back_as_written_with_an_offset(database_url: str) -> None:
    settings = Settings(database_url=database_url, api_keys=(KEY,))
    client = TestClient(create_app(settings, RecordingQueue()))  # type: ignore[arg-type]
    definition = {"steps": [{"type": "transform", "name": "t", "expression": "input"}]}
    workflow = client.post("/workflows", json={"name": "stamped", "definition": definition}, headers=AUTH)
    assert workflow.status_code == 201, workflow.text
    written = _check(workflow.json())
    workflow_id = workflow.json()["id"]
    assert _check(client.get(f"/workflows/{workflow_id}", headers=AUTH).json()) == written
    assert _check(client.get("/workflows", headers=AUTH).json()["items"][0]) == written
    updated = client.put(f"/workflows/{workflow_id}", json={"name": "stamped", "definition": definition},
                         headers=AUTH)
    assert updated.status_code == 200, updated.text
    changed = _check(updated.json())
    assert changed["created_at"] == written["created_at"] and changed["updated_at"] >= written["updated_at"]
    assert _check(client.get(f"/workflows/{workflow_id}", headers=AUTH).json()) == changed

    started = client.post(f"/workflows/{workflow_id}/executions", json={"input": {"n": 1}}, headers=AUTH)
    assert started.status_code == 202, started.text
    accepted = started.json()
    _check(accepted)
    execution_id = accepted["id"]
    read = client.get(f"/executions/{execution_id}", headers=AUTH).json()
    listed = client.get("/executions", params={"workflow_id": workflow_id}, headers=AUTH).json()["items"][0]
    for body in (read, listed):
        # The same moment, and the same text: a client comparing strings sees one timestamp, not two. (updated_at
        # moves on after the 202's row was read: recording that the execution was sent updates the row.)
        assert body["created_at"] == accepted["created_at"]
        assert _check(body)["updated_at"] >= _check(accepted)["updated_at"]
    assert read["updated_at"] == listed["updated_at"]

    # What the database hands the runtime is aware and in UTC too (leases compare it with the database's clock).
    with sessions(database_url)() as session:
        row = session.get(Execution, execution_id)
        assert row is not None
        assert row.created_at.tzinfo is not None and row.created_at.utcoffset() == UTC.utcoffset(None)
        assert row.enqueued_at is not None and row.enqueued_at.utcoffset() == UTC.utcoffset(None)
