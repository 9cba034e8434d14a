"""boto3 behind a small interface: sessions that honour AWS_PROFILE, AWS_REGION and AWS_ENDPOINT_URL like
every AWS tool, and the CloudFormation and S3 calls fbc makes, with throttling retried.

Tests drive it against moto's server over HTTP, or swap the client for one with botocore's Stubber.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError

T = TypeVar("T")
THROTTLING = {"Throttling", "ThrottlingException", "RequestLimitExceeded", "TooManyRequestsException"}
POLL_SECONDS = float(os.environ.get("FBC_POLL_SECONDS", "5"))
ATTEMPTS = 6  # throttled calls, with exponential back-off


class DeployError(Exception):
    """A deploy problem with a message for the user (no traceback)."""


def session(region: str) -> Any:
    """A boto3 session in `region`. AWS_PROFILE and the credential chain are boto3's own; AWS_ENDPOINT_URL
    is honoured by botocore for every client. AWS_REGION, if set, must agree with the spec."""
    configured = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")
    if configured and configured != region:
        raise DeployError(f"AWS_REGION is {configured}, but the spec deploys to {region}: unset AWS_REGION or "
                          f"change spec.region")
    try:
        result = boto3.Session(region_name=region)
        if result.get_credentials() is None:
            raise DeployError("no AWS credentials: set AWS_PROFILE, or AWS_ACCESS_KEY_ID and "
                              "AWS_SECRET_ACCESS_KEY, or run where a role is available")
    except BotoCoreError as exc:  # e.g. a profile that does not exist
        raise DeployError(str(exc)) from None
    return result


def client(sess: Any, service: str) -> Any:
    return sess.client(service, config=Config(retries={"mode": "standard", "max_attempts": 8}))


def call(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Call an AWS API, backing off on throttling (polling loops call often, and CI runs in parallel)."""
    for attempt in range(ATTEMPTS):
        try:
            return fn(*args, **kwargs)
        except ClientError as exc:
            if exc.response["Error"]["Code"] not in THROTTLING or attempt == ATTEMPTS - 1:
                raise
            time.sleep(min(POLL_SECONDS, 0.5) * 2 ** attempt)
        except NoCredentialsError:
            raise DeployError("no AWS credentials: set AWS_PROFILE, or AWS_ACCESS_KEY_ID and "
                              "AWS_SECRET_ACCESS_KEY") from None
    raise AssertionError("unreachable")


def error_code(exc: ClientError) -> str:
    return str(exc.response["Error"]["Code"])


def error_message(exc: ClientError) -> str:
    return str(exc.response["Error"].get("Message", ""))


@dataclass(frozen=True)
class StackInfo:
    name: str
    stack_id: str
    status: str
    reason: str
    outputs: dict[str, str]
    parameters: dict[str, str]
    termination_protection: bool


@dataclass(frozen=True)
class Event:
    event_id: str
    timestamp: datetime
    logical_id: str
    resource_type: str
    status: str
    reason: str


class CloudFormation:
    def __init__(self, cfn: Any) -> None:
        self.cfn = cfn

    def describe(self, name: str) -> StackInfo | None:
        try:
            stacks = call(self.cfn.describe_stacks, StackName=name)["Stacks"]
        except ClientError as exc:
            if "does not exist" in error_message(exc):
                return None
            raise
        stack = stacks[0]
        if stack["StackStatus"] == "DELETE_COMPLETE":
            return None
        return StackInfo(
            name=stack["StackName"], stack_id=stack["StackId"], status=stack["StackStatus"],
            reason=stack.get("StackStatusReason", ""),
            outputs={o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])},
            parameters={p["ParameterKey"]: p.get("ParameterValue", "") for p in stack.get("Parameters", [])},
            termination_protection=bool(stack.get("EnableTerminationProtection")))

    def template(self, name: str) -> dict[str, Any]:
        body = call(self.cfn.get_template, StackName=name, TemplateStage="Original")["TemplateBody"]
        if isinstance(body, str):
            from cfnlint.decode import decode_str

            decoded, matches = decode_str(body)
            if decoded is None:
                raise DeployError(f"cannot read the deployed template of {name}: {matches[0].message}")
            return dict(decoded)
        return dict(body)

    def events(self, name: str, since: datetime) -> list[Event]:
        """Events newer than `since`, oldest first."""
        out: list[Event] = []
        token: str | None = None
        while True:
            kwargs: dict[str, Any] = {"StackName": name, **({"NextToken": token} if token else {})}
            page = call(self.cfn.describe_stack_events, **kwargs)
            done = False
            for raw in page["StackEvents"]:
                if raw["Timestamp"] < since:
                    done = True
                    break
                out.append(Event(raw["EventId"], raw["Timestamp"], raw.get("LogicalResourceId", ""),
                                 raw.get("ResourceType", ""), raw.get("ResourceStatus", ""),
                                 raw.get("ResourceStatusReason", "")))
            token = page.get("NextToken")
            if done or not token:
                break
        return sorted(out, key=lambda e: e.timestamp)

    def change_set_changes(self, name: str, change_set: str) -> tuple[str, str, list[dict[str, Any]]]:
        changes: list[dict[str, Any]] = []
        token: str | None = None
        while True:
            kwargs: dict[str, Any] = {"StackName": name, "ChangeSetName": change_set,
                                      **({"NextToken": token} if token else {})}
            page = call(self.cfn.describe_change_set, **kwargs)
            changes += [c["ResourceChange"] for c in page.get("Changes", []) if c.get("Type") == "Resource"]
            token = page.get("NextToken")
            if not token:
                return page["Status"], page.get("StatusReason", ""), changes


def pages(fn: Callable[..., dict[str, Any]], key: str, **kwargs: Any) -> Iterator[Any]:
    token = None
    while True:
        page = call(fn, **kwargs, **({"NextToken": token} if token else {}))
        yield from page.get(key, [])
        token = page.get("NextToken")
        if not token:
            return
