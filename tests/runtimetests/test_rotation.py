"""RDS rotates its managed master password every 7 days. The runtime takes the credentials for each new
connection from the secret (FLOWBUILDER_DB_SECRET_ARN, on moto's Secrets Manager over HTTP), cached, and reads
it again once when PostgreSQL refuses them: a rotation needs no restart.

A role of its own (password A) owns a database of its own on the machine's PostgreSQL; a rotation writes B to
the secret, sets B on the role and terminates the role's connections, so every process has to connect anew.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import httpx
import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.exc import OperationalError, ProgrammingError

from conftest import IN_CI, free_port
from flowbuilder.runtime.db import session as db

from .conftest import queue_with_dead_letters, sqs_client, wait_until

MOTO_ENV = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1"}


@dataclass
class Rotation:
    role: str
    password: str
    secret_arn: str
    admin: Any  # an AUTOCOMMIT engine as the test server's user
    secrets: Any  # a Secrets Manager client on moto

    @property
    def url(self) -> str:
        """What FLOWBUILDER_DB_HOST/PORT/NAME make: no credentials."""
        return f"postgresql+psycopg://127.0.0.1:5432/{self.role}"

    def env(self) -> dict[str, str]:
        return {"FLOWBUILDER_DB_HOST": "127.0.0.1", "FLOWBUILDER_DB_PORT": "5432", "FLOWBUILDER_DB_NAME": self.role,
                "FLOWBUILDER_DB_SECRET_ARN": self.secret_arn}

    def set_secret(self, password: str) -> None:
        self.secrets.put_secret_value(SecretId=self.secret_arn,
                                      SecretString=json.dumps({"username": self.role, "password": password}))

    def set_role(self, password: str) -> None:
        with self.admin.connect() as connection:
            connection.execute(text(f"ALTER ROLE {self.role} PASSWORD '{password}'"))

    def terminate_connections(self) -> int:
        with self.admin.connect() as connection:
            return len(connection.execute(text(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = :role"),
                {"role": self.role}).all())

    def rotate(self) -> str:
        """A new password in the secret and on the role, every open connection gone. (RDS sets the role first
        and the secret a moment later; a connection in between fails once and the next one reads again.)"""
        self.password = f"pw-b-{uuid.uuid4().hex}"
        self.set_secret(self.password)
        self.set_role(self.password)
        self.terminate_connections()
        return self.password


@pytest.fixture
def rotation(moto_server: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Rotation]:
    admin_url = os.environ.get("FLOWBUILDER_TEST_POSTGRES_URL", "")
    if not admin_url:
        if IN_CI:
            raise RuntimeError("FLOWBUILDER_TEST_POSTGRES_URL is not set (.ci/run starts PostgreSQL)")
        pytest.skip("no PostgreSQL: set FLOWBUILDER_TEST_POSTGRES_URL")
    for key, value in {**MOTO_ENV, "AWS_ENDPOINT_URL": moto_server}.items():
        monkeypatch.setenv(key, value)  # DatabaseCredentials in this process reads the secret from moto
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    role, password = f"fb_rotation_{uuid.uuid4().hex[:10]}", f"pw-a-{uuid.uuid4().hex}"
    try:
        with admin.connect() as connection:
            connection.execute(text(f"CREATE ROLE {role} LOGIN PASSWORD '{password}'"))
    except ProgrammingError as exc:  # the role lacks CREATEROLE
        message = f"the PostgreSQL test role needs CREATEROLE for rotation tests: {exc.orig}"
        if IN_CI:
            raise RuntimeError(message) from None
        pytest.skip(message)
    with admin.connect() as connection:
        connection.execute(text(f"GRANT {role} TO CURRENT_USER"))  # to own its database, end its sessions
        connection.execute(text(f"CREATE DATABASE {role} OWNER {role}"))
    secrets = boto3.client("secretsmanager", endpoint_url=moto_server, region_name="us-east-1",
                           aws_access_key_id="testing", aws_secret_access_key="testing")
    arn = secrets.create_secret(Name=f"rds!{role}", SecretString=json.dumps(
        {"username": role, "password": password}))["ARN"]
    yield Rotation(role, password, arn, admin, secrets)
    with admin.connect() as connection:
        connection.execute(text(f"DROP DATABASE IF EXISTS {role} WITH (FORCE)"))
        connection.execute(text(f"DROP ROLE IF EXISTS {role}"))
    admin.dispose()


def _connect(engine: Any) -> None:
    with engine.connect() as connection:
        assert connection.execute(text("SELECT 1")).scalar() == 1


def test_credentials_are_read_once_and_again_only_after_a_refusal(rotation: Rotation,
                                                                  caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level("INFO", logger="flowbuilder")
    engine, credentials = db.engine(rotation.url, rotation.secret_arn), db.credentials(rotation.secret_arn)
    first = rotation.password
    for _ in range(3):  # three new connections, one read
        _connect(engine)
        engine.dispose()
    assert credentials.reads == 1

    second = rotation.rotate()
    barrier = threading.Barrier(5)
    failures: list[BaseException] = []

    def connect_at_once() -> None:
        barrier.wait()
        try:
            _connect(engine)
        except BaseException as exc:
            failures.append(exc)

    threads = [threading.Thread(target=connect_at_once) for _ in range(5)]  # five new connections at once
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert failures == []
    assert credentials.reads == 2  # each refused the cached pair, one of them read the secret again
    engine.dispose()
    _connect(engine)
    assert credentials.reads == 2

    rotation.set_role(f"pw-c-{uuid.uuid4().hex}")  # a password the secret does not hold
    engine.dispose()
    with pytest.raises(OperationalError, match="password authentication failed"):
        _connect(engine)
    assert credentials.reads == 3  # read once more, then the refusal is the caller's
    assert first not in caplog.text and second not in caplog.text and first not in repr(credentials)


def _api(env: dict[str, str], port: int, log: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-m", "flowbuilder.runtime.api"],
                            env={**env, "PORT": str(port), "FLOWBUILDER_HOST": "127.0.0.1"},
                            stdout=log.open("w"), stderr=subprocess.STDOUT)


def test_worker_and_api_keep_working_across_a_rotation(rotation: Rotation, moto_server: str, tmp_path: Path) -> None:
    sqs = sqs_client(moto_server)
    queue, _ = queue_with_dead_letters(sqs, "rotation", visibility=5, max_receive=3)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "FLOWBUILDER_", "ECS_"))}
    env.update({**MOTO_ENV, **rotation.env(), "AWS_ENDPOINT_URL": moto_server, "FLOWBUILDER_QUEUE_URL": queue,
                "FLOWBUILDER_API_KEYS": "key", "FLOWBUILDER_POLL_WAIT": "1", "FLOWBUILDER_LEASE_SECONDS": "10",
                "FLOWBUILDER_VISIBILITY_SECONDS": "3", "PYTHONUNBUFFERED": "1"})
    first = rotation.password
    logs = {"api": tmp_path / "api.log", "worker": tmp_path / "worker.log"}
    port = free_port()
    api = _api(env, port, logs["api"])
    worker = subprocess.Popen([sys.executable, "-m", "flowbuilder.runtime.worker"], env=env,
                              stdout=logs["worker"].open("w"), stderr=subprocess.STDOUT)
    client = httpx.Client(base_url=f"http://127.0.0.1:{port}", headers={"Authorization": "Bearer key"}, timeout=30)

    def ready() -> bool:
        assert api.poll() is None, logs["api"].read_text()
        try:
            return client.get("/readyz").status_code == 200
        except httpx.HTTPError:
            return False

    def run_three(workflow: str) -> None:
        ids = []
        for n in range(3):
            started = client.post(f"/workflows/{workflow}/executions", json={"input": {"n": n}})
            assert started.status_code == 202, started.text
            ids.append(started.json()["id"])

        def all_succeeded() -> bool:
            states = [client.get(f"/executions/{i}").json()["state"] for i in ids]
            assert "failed" not in states, states
            return states == ["succeeded"] * 3

        wait_until(all_succeeded, 60, "three executions through the worker")

    try:
        wait_until(ready, 60, "API ready")
        created = client.post("/workflows", json={"name": "rotate", "definition": {"steps": [
            {"type": "transform", "name": "double", "expression": "{n: input.n}"}]}})
        assert created.status_code == 201, created.text
        workflow = created.json()["id"]
        run_three(workflow)

        second = rotation.rotate()
        assert client.get("/workflows").status_code == 200  # the API's pool connects anew
        assert client.get("/readyz").json() == {"database": "ok", "queue": "ok"}
        run_three(workflow)  # and the worker's
        time.sleep(0.5)
        assert client.get("/executions", params={"state": "failed"}).json()["total"] == 0
    finally:
        client.close()
        for process in (worker, api):
            process.terminate()
            process.wait(30)
    for name, path in logs.items():
        output = path.read_text()
        assert "Traceback" not in output and " ERROR " not in output, f"{name}:\n{output}"
        # The secret was read at start and once after the rotation, not for every connection.
        assert "(read 1)" in output and "(read 2)" in output and "(read 3)" not in output, f"{name}:\n{output}"
        assert first not in output and second not in output
