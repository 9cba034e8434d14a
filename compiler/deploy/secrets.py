"""fbc secret: the spec's secret references for one environment, which of them exist (never their values), and
writing one as an SSM SecureString.

A reference is what the spec names (runtime.secrets, a service's secrets) with `${env}` replaced: an SSM
parameter name, an SSM parameter ARN or a Secrets Manager ARN. Existence is read from metadata only
(DescribeParameters, DescribeSecret), so no value ever travels to this machine.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from botocore.exceptions import ClientError

from ..plan import Plan
from .aws import Aws, DeployError, error_code

Store = Literal["ssm", "secretsmanager"]
_SSM_ARN = re.compile(r"^arn:aws[a-z-]*:ssm:(?P<region>[a-z0-9-]+):\d{12}:parameter(?P<name>/.*)$")
_SECRET_ARN = re.compile(r"^(arn:aws[a-z-]*:secretsmanager:(?P<region>[a-z0-9-]+):\d{12}:secret:[^:]+)")
DESCRIBE_BATCH = 50  # DescribeParameters' Name filter takes at most 50 values


@dataclass(frozen=True)
class Reference:
    name: str  # the variable the containers get: API_KEYS
    reference: str  # as the environment resolves it: /app/dev/api-keys, or an ARN
    used_by: tuple[str, ...]  # the services that get it, and "scheduler"

    @property
    def store(self) -> Store:
        return "secretsmanager" if _SECRET_ARN.match(self.reference) else "ssm"

    @property
    def parameter(self) -> str:
        """The SSM parameter's name (PutParameter takes no ARN); for Secrets Manager, the secret's ARN without
        the JSON key, stage and version that ECS reads from it."""
        ssm, secret = _SSM_ARN.match(self.reference), _SECRET_ARN.match(self.reference)
        return ssm["name"] if ssm else secret[1] if secret else self.reference

    @property
    def region(self) -> str | None:
        """The region an ARN names; None for a parameter name (the stack's region)."""
        found = _SSM_ARN.match(self.reference) or _SECRET_ARN.match(self.reference)
        return found["region"] if found else None


@dataclass(frozen=True)
class Found:
    reference: Reference
    exists: bool
    detail: str  # SecureString, version 3, changed 2026-11-28 12:00 UTC; or why it could not be read


def references(plan: Plan) -> list[Reference]:
    """Every (name, reference) pair of the environment's plan, with who reads it, sorted by name."""
    users: dict[tuple[str, str], list[str]] = {}
    for name, reference in plan.runtime_secrets:
        users.setdefault((name, reference), [])
    for service in plan.services:
        for pair in service.secrets:
            users.setdefault(pair, []).append(service.name)
    if plan.runtime_queue is not None:  # the scheduler function exists, and reads the runtime's secrets
        for pair in plan.runtime_secrets:
            users[pair].append("scheduler")
    return [Reference(name, reference, tuple(who)) for (name, reference), who in sorted(users.items())]


def chosen(plan: Plan, name: str) -> Reference:
    """The one reference NAME has in this environment; a ValueError names the choices otherwise."""
    found = {r.reference: r for r in references(plan) if r.name == name}
    if not found:
        known = sorted({r.name for r in references(plan)})
        raise ValueError(f"{name} is not a secret of the spec in {plan.environment}"
                         + (f" (its secrets: {', '.join(known)})" if known else " (it has no secrets)"))
    if len(found) > 1:
        raise ValueError(f"{name} has {len(found)} references in {plan.environment} "
                         f"({', '.join(sorted(found))}): set each with aws ssm put-parameter")
    return next(iter(found.values()))


def writable(plan: Plan, ref: Reference) -> None:
    """Refuse what fbc secret set does not write: a Secrets Manager reference, a parameter in another region."""
    if ref.store == "secretsmanager":
        raise DeployError(f"{ref.name} refers to Secrets Manager ({ref.reference}): fbc secret set writes SSM "
                          f"parameters only; use aws secretsmanager put-secret-value --secret-id {ref.parameter}")
    if ref.region not in (None, plan.region):
        raise DeployError(f"{ref.name} refers to a parameter in {ref.region}, not {plan.region} where the stack "
                          f"is: set it there with aws ssm put-parameter")


def put(aws: Aws, plan: Plan, ref: Reference, value: str, *, overwrite: bool) -> int:
    """Write `value` as the SecureString `ref` names (AWS's default key, aws/ssm); its new version. Refuses what
    `writable` refuses, and an existing parameter without `overwrite`."""
    writable(plan, ref)
    if not value:
        raise ValueError(f"{ref.name}: the value is empty; nothing written")
    try:
        answer = aws.call(aws.client("ssm").put_parameter, Name=ref.parameter, Value=value, Type="SecureString",
                          Overwrite=overwrite)
    except ClientError as exc:
        if error_code(exc) == "ParameterAlreadyExists":
            raise DeployError(f"{ref.parameter} exists: pass --overwrite to replace its value") from None
        raise
    return int(answer.get("Version", 0))


def look(aws: Aws, refs: list[Reference]) -> list[Found]:
    """Whether each reference exists, from metadata only, in the order given."""
    ssm = [r for r in refs if r.store == "ssm"]
    metadata: dict[str, dict[str, Any]] = {}
    for start in range(0, len(ssm), DESCRIBE_BATCH):
        names = sorted({r.parameter for r in ssm[start:start + DESCRIBE_BATCH]})
        for page in aws.pages(aws.client("ssm").describe_parameters,
                              ParameterFilters=[{"Key": "Name", "Option": "Equals", "Values": names}]):
            metadata.update({p["Name"]: p for p in page.get("Parameters", [])})
    out = []
    for ref in refs:
        if ref.store == "secretsmanager":
            out.append(_secret(aws, ref))
            continue
        found = metadata.get(ref.parameter)
        if found is None:
            out.append(Found(ref, False, "missing"))
            continue
        kind = found.get("Type", "?") + ("" if found.get("Type") == "SecureString" else " (not encrypted)")
        out.append(Found(ref, True, f"SSM {kind}, version {found.get('Version', '?')}"
                                    f"{_changed(found.get('LastModifiedDate'))}"))
    return out


def _secret(aws: Aws, ref: Reference) -> Found:
    try:
        found = aws.call(aws.client("secretsmanager").describe_secret, SecretId=ref.parameter)
    except ClientError as exc:
        if error_code(exc) == "ResourceNotFoundException":
            return Found(ref, False, "missing (Secrets Manager)")
        return Found(ref, False, f"not readable ({error_code(exc)})")
    deleted = " (scheduled for deletion)" if found.get("DeletedDate") else ""
    return Found(ref, not deleted, f"Secrets Manager{deleted}{_changed(found.get('LastChangedDate'))}")


def _changed(when: datetime | None) -> str:
    return f", changed {when.astimezone(UTC):%Y-%m-%d %H:%M} UTC" if isinstance(when, datetime) else ""
