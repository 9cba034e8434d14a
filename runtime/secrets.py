"""Secrets the runtime reads itself, never logged.

- Lambda has no ECS-style Secrets: references the compiler put in the environment are resolved here, once
  per cold start (load_database_url).
- RDS's master password (standard profile) rotates every 7 days, so it is not read once: DatabaseCredentials
  hands it to every new database connection (db/session.py), cached, and reads it again when refused.
"""

from __future__ import annotations

import json
import logging
import os
import threading

import boto3

from .config import ENV_PREFIX

SECRET_REF_PREFIX = f"{ENV_PREFIX}SECRET_"

log = logging.getLogger("flowbuilder.secrets")


def _read(reference: str, source: str | None = None) -> str:
    if source == "ssm" or (source is None and (reference.startswith("/") or ":ssm:" in reference)):
        name = reference.split(":parameter", 1)[1] if reference.startswith("arn:") else reference
        return str(boto3.client("ssm").get_parameter(Name=name, WithDecryption=True)["Parameter"]["Value"])
    # arn:aws:secretsmanager:region:account:secret:name[:json-key:stage:version]
    parts = reference.split(":")
    json_key = parts[7] if len(parts) > 7 else ""
    value = str(boto3.client("secretsmanager").get_secret_value(SecretId=":".join(parts[:7]))["SecretString"])
    return str(json.loads(value)[json_key]) if json_key else value


def load_database_url() -> None:
    """Fill FLOWBUILDER_DATABASE_URL (ultra, Lambda) from its store, and the spec's secret references. The
    RDS credentials (FLOWBUILDER_DB_SECRET_ARN) are not read here: see DatabaseCredentials."""
    env = os.environ
    if env.get("FLOWBUILDER_DATABASE_URL_SECRET") and not env.get("FLOWBUILDER_DATABASE_URL"):
        env["FLOWBUILDER_DATABASE_URL"] = _read(env["FLOWBUILDER_DATABASE_URL_SECRET"],
                                                env.get("FLOWBUILDER_DATABASE_URL_SOURCE"))
    for name, reference in list(env.items()):
        if name.startswith(SECRET_REF_PREFIX):
            env.setdefault(name[len(SECRET_REF_PREFIX):], _read(reference))


class DatabaseCredentials:
    """The user name and password in the secret RDS manages (FLOWBUILDER_DB_SECRET_ARN; its SecretString is
    JSON with "username" and "password"). Read on first use, then cached: a rotation is noticed when the
    server refuses the cached pair, and refresh() reads the secret once more for every connection waiting."""

    def __init__(self, secret_arn: str) -> None:
        self.secret_arn = secret_arn
        self.reads = 0  # how often the secret was fetched (logged; tests count it)
        self._lock = threading.Lock()
        self._current: tuple[str, str] | None = None

    def __repr__(self) -> str:  # never the values
        return f"DatabaseCredentials({self.secret_arn!r}, reads={self.reads})"

    def get(self) -> tuple[str, str]:
        with self._lock:
            if self._current is None:
                self._current = self._fetch()
            return self._current

    def refresh(self, rejected: tuple[str, str]) -> tuple[str, str]:
        """The pair to try after the server refused `rejected`: read again, unless another connection already
        replaced `rejected` (so a pool reconnecting after a rotation reads the secret once, not per thread)."""
        with self._lock:
            if self._current is None or self._current == rejected:
                self._current = self._fetch()
            return self._current

    def _fetch(self) -> tuple[str, str]:
        value = boto3.client("secretsmanager").get_secret_value(SecretId=self.secret_arn)["SecretString"]
        secret = json.loads(value)
        self.reads += 1
        log.info("database credentials read from %s (read %d)", self.secret_arn, self.reads)
        return str(secret["username"]), str(secret["password"])
