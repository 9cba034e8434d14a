"""Constrained scalar types of the spec, each with its JSON Schema and a readable error.

Durations read as "30s", "15m", "4d" or integer seconds; the validator gives back seconds.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any

from pydantic import BeforeValidator, Field, StringConstraints
from pydantic_core import PydanticCustomError

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
DURATION_PATTERN = r"^[0-9]+(s|m|h|d)$"
_DURATION_RE = re.compile(DURATION_PATTERN)


def human_duration(seconds: int) -> str:
    """43200 -> '12h'; the largest unit that divides evenly."""
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds and seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def parse_duration(text: str) -> int:
    """'30s', '15m', '12h', '4d' or plain seconds -> seconds (for command-line options)."""
    if text.isdigit():
        return int(text)
    if not _DURATION_RE.match(text):
        raise ValueError("use seconds or '30s', '15m', '12h', '4d'")
    return int(text[:-1]) * _UNITS[text[-1]]


def _duration_validator(lo: int, hi: int) -> Callable[[Any], int]:
    def parse(value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int | str):
            raise PydanticCustomError(
                "duration_type", "{shown} is not a duration: use seconds or a string like '30s', '15m', '4d'",
                {"shown": show(value)})
        if isinstance(value, str):
            if not _DURATION_RE.match(value):
                raise PydanticCustomError(
                    "duration_format", "'{value}' is not a duration: use seconds or '30s', '15m', '12h', '4d'",
                    {"value": value})
            seconds = parse_duration(value)
        else:
            seconds = value
        shown = show(value)
        if seconds > hi:
            raise PydanticCustomError("less_than_equal", "{shown} is greater than the maximum of {hi} ({h})",
                                      {"shown": shown, "hi": hi, "h": human_duration(hi)})
        if seconds < lo:
            raise PydanticCustomError("greater_than_equal", "{shown} is less than the minimum of {lo} ({h})",
                                      {"shown": shown, "lo": lo, "h": human_duration(lo)})
        return seconds

    return parse


@dataclass(frozen=True)
class _DurationSchema:
    """The JSON Schema of a duration. (pydantic's WithJsonSchema would import pydantic.json_schema on every
    `fbc validate`; this hook runs only when a schema is generated.)"""

    lo: int
    hi: int

    def __get_pydantic_json_schema__(self, core_schema: Any, handler: Any) -> dict[str, Any]:
        # No description on the branches: editors would show it on hover instead of the field's own.
        return {"anyOf": [{"type": "integer", "minimum": self.lo, "maximum": self.hi},
                          {"type": "string", "pattern": DURATION_PATTERN}]}


def Duration(lo: int, hi: int) -> Any:  # capitalised: it reads as a type in annotations
    """A duration in seconds between lo and hi, written as an integer or '30s'/'15m'/'12h'/'4d'."""
    return Annotated[int, BeforeValidator(_duration_validator(lo, hi)), _DurationSchema(lo, hi)]


def show(value: Any) -> str:
    """A value as the user wrote it in YAML."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):  # repr() escapes newlines: a diagnostic stays one line
        return repr(value) if len(value) <= 60 else repr(value[:57] + "...")
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    return str(value)


# Patterns, with the sentence a user sees when a value does not match (pydantic's own says only "should
# match pattern").
NAME_PATTERN = r"^[a-z]([a-z0-9-]{0,30}[a-z0-9])?$"
ENV_NAME_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]*$"
IMAGE_PATTERN = (
    r"^[a-z0-9]+([._-][a-z0-9]+)*(:[0-9]+)?(/[a-z0-9]+([._-][a-z0-9]+)*)*"
    r"(:[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}|@sha256:[a-f0-9]{64})?$"
)
REGION_PATTERN = r"^[a-z]{2}(-gov|-iso[a-z]?)?-[a-z]+-[0-9]$"
PATH_PATTERN = r"^/[A-Za-z0-9._~/-]*$"
DB_NAME_PATTERN = r"^[a-z][a-z0-9_]{0,62}$"
LABEL_KEY_PATTERN = r"^([a-z0-9.-]+/)?[A-Za-z0-9]([A-Za-z0-9_.-]{0,61}[A-Za-z0-9])?$"
# A secret is referenced, never given: a Secrets Manager ARN (optionally ':json-key:version-stage:version-id'),
# an SSM parameter ARN, or an SSM parameter name starting with '/'.
# A name may hold `${env}`, replaced by the environment's name, so each environment reads its own secret.
ENV_PLACEHOLDER = "${env}"
SECRET_REF_PATTERN = (
    r"^(arn:aws[a-z-]*:secretsmanager:[a-z0-9-]+:[0-9]{12}:secret:([A-Za-z0-9/_+=.@-]|\$\{env\})+"
    r"(:[A-Za-z0-9_.-]*:[A-Za-z0-9_-]*:[A-Za-z0-9-]*)?"
    r"|arn:aws[a-z-]*:ssm:[a-z0-9-]+:[0-9]{12}:parameter/([A-Za-z0-9/_.-]|\$\{env\})+"
    r"|/([A-Za-z0-9_.-]|\$\{env\})+(/([A-Za-z0-9_.-]|\$\{env\})+)*)$"
)
# An ACM certificate for the load balancer's HTTPS listener.
CERTIFICATE_PATTERN = r"^arn:aws[a-z-]*:acm:[a-z0-9-]+:[0-9]{12}:certificate/[A-Za-z0-9-]+$"

PATTERN_HELP = {
    NAME_PATTERN: "is not a valid name: 1-32 lowercase letters, digits and '-', starting with a letter "
                  "and not ending with '-'",
    ENV_NAME_PATTERN: "is not a valid environment variable name (letters, digits and '_', not starting "
                      "with a digit)",
    IMAGE_PATTERN: "is not a valid container image reference (registry/repository:tag or @sha256:digest)",
    REGION_PATTERN: "is not an AWS region name such as 'us-east-1'",
    PATH_PATTERN: "is not an HTTP path starting with '/'",
    DB_NAME_PATTERN: "is not a valid PostgreSQL database name (lowercase letters, digits, '_', at most 63)",
    LABEL_KEY_PATTERN: "is not a valid label key",
    CERTIFICATE_PATTERN: "is not an ACM certificate ARN (arn:aws:acm:<region>:<account>:certificate/<id>)",
    SECRET_REF_PATTERN: "is not a secret reference: give an SSM parameter name ('/app/prod/api-key') or a "
                        "Secrets Manager or SSM ARN, never the secret's value",
}

Name = Annotated[str, StringConstraints(pattern=NAME_PATTERN)]
EnvName = Annotated[str, StringConstraints(pattern=ENV_NAME_PATTERN)]
# An image in Amazon ECR, in parts: Lambda runs only these (checks/images.py), and a task's execution role may
# pull only its repository (emit/tasks.py).
ECR_IMAGE = re.compile(r"^(?P<account>\d{12})\.dkr\.ecr\.(?P<region>[a-z0-9-]+)\.amazonaws\.com(\.cn)?/"
                       r"(?P<repository>[^:@]+)(?P<ref>[:@].+)?$")
ImageUri = Annotated[str, StringConstraints(pattern=IMAGE_PATTERN, max_length=512)]
Region = Annotated[str, StringConstraints(pattern=REGION_PATTERN)]
HttpPath = Annotated[str, StringConstraints(pattern=PATH_PATTERN, max_length=1024)]
DbName = Annotated[str, StringConstraints(pattern=DB_NAME_PATTERN)]
LabelKey = Annotated[str, StringConstraints(pattern=LABEL_KEY_PATTERN)]
LabelValue = Annotated[str, StringConstraints(max_length=256)]
SecretRef = Annotated[str, StringConstraints(pattern=SECRET_REF_PATTERN, max_length=2048)]
CertificateArn = Annotated[str, StringConstraints(pattern=CERTIFICATE_PATTERN, max_length=2048)]
Port = Annotated[int, Field(ge=1, le=65535)]
