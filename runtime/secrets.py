"""Secrets the runtime reads itself, never logged.

- Lambda has no ECS-style Secrets: references the compiler put in the environment are read with
  read_reference, once per cold start (config.resolve_secrets).
- RDS's master password (standard profile) rotates every 7 days, so it is not read once: DatabaseCredentials
  hands it to every new database connection (db/session.py), cached, and reads it again when refused.
"""

from __future__ import annotations

import json
import logging
import threading

from .contract import SECRET_REF_PREFIX

__all__ = ["SECRET_REF_PREFIX", "DatabaseCredentials", "read_reference"]

log = logging.getLogger("flowbuilder.secrets")


def read_reference(reference: str, source: str | None = None) -> str:
    """The value behind an SSM parameter name or ARN, or a Secrets Manager ARN (with an optional JSON key)."""
    import boto3  # here, not at the module's import: most processes read no secret

    if source == "ssm" or (source is None and (reference.startswith("/") or ":ssm:" in reference)):
        name = reference.split(":parameter", 1)[1] if reference.startswith("arn:") else reference
        return str(boto3.client("ssm").get_parameter(Name=name, WithDecryption=True)["Parameter"]["Value"])
    # arn:aws:secretsmanager:region:account:secret:name[:json-key:stage:version]
    parts = reference.split(":")
    json_key = parts[7] if len(parts) > 7 else ""
    value = str(boto3.client("secretsmanager").get_secret_value(SecretId=":".join(parts[:7]))["SecretString"])
    return str(json.loads(value)[json_key]) if json_key else value


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
        import boto3

        value = boto3.client("secretsmanager").get_secret_value(SecretId=self.secret_arn)["SecretString"]
        secret = json.loads(value)
        self.reads += 1
        log.info("database credentials read from %s (read %d)", self.secret_arn, self.reads)
        return str(secret["username"]), str(secret["password"])
