"""Schemathesis against the API's own OpenAPI: generated requests, authenticated, never a 5xx."""

from __future__ import annotations

import tempfile
from pathlib import Path

import schemathesis
from hypothesis import HealthCheck, settings

from flowbuilder.runtime.api.app import create_app
from flowbuilder.runtime.config import Settings


class RecordingQueue:
    """Stands in for SQS here (the SQS path runs over HTTP against moto in test_api.py): the fuzz is about
    what the API does with any request."""

    def __init__(self) -> None:
        self.sent: list[str] = []

    def send(self, execution_id: str) -> None:
        self.sent.append(execution_id)

    def reachable(self) -> bool:
        return True


DB = Path(tempfile.mkdtemp()) / "fuzz.db"
APP = create_app(Settings(database_url=f"sqlite:///{DB}", api_keys=("fuzz-key",), base_path="/api"),
                 RecordingQueue())  # type: ignore[arg-type]
schema = schemathesis.openapi.from_asgi("/api/openapi.json", APP)


@schema.parametrize()
@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
def test_no_server_errors(case: schemathesis.Case) -> None:
    response = case.call(headers={"Authorization": "Bearer fuzz-key"})
    assert response.status_code < 500, f"{case.method} {case.formatted_path}: {response.status_code} {response.text}"
