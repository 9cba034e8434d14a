"""Lambda has no ECS-style Secrets: references the compiler put in the environment are resolved here, once
per cold start, and never logged."""

from __future__ import annotations

import json
import os

import boto3

from .config import ENV_PREFIX

SECRET_REF_PREFIX = f"{ENV_PREFIX}SECRET_"


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
    """Fill FLOWBUILDER_DATABASE_URL (ultra) or the RDS user/password (standard) from their stores."""
    env = os.environ
    if env.get("FLOWBUILDER_DATABASE_URL_SECRET") and not env.get("FLOWBUILDER_DATABASE_URL"):
        env["FLOWBUILDER_DATABASE_URL"] = _read(env["FLOWBUILDER_DATABASE_URL_SECRET"],
                                                env.get("FLOWBUILDER_DATABASE_URL_SOURCE"))
    if env.get("FLOWBUILDER_DB_SECRET_ARN") and not env.get("FLOWBUILDER_DB_PASSWORD"):
        secret = json.loads(_read(env["FLOWBUILDER_DB_SECRET_ARN"], "secretsmanager"))
        env["FLOWBUILDER_DB_USER"], env["FLOWBUILDER_DB_PASSWORD"] = secret["username"], secret["password"]
    for name, reference in list(env.items()):
        if name.startswith(SECRET_REF_PREFIX):
            env.setdefault(name[len(SECRET_REF_PREFIX):], _read(reference))
