"""boto3 behind a small interface: sessions that honour AWS_PROFILE, AWS_REGION and AWS_ENDPOINT_URL like
every AWS tool, bounded HTTP timeouts and one retry layer (botocore's standard or adaptive mode, configured
once, each retry said), and the CloudFormation calls fbc makes as named, typed methods of one class, which
records the change sets a run has not executed so that an interrupted run can delete them. Every wait of
fbc's own (a poll, a deadline) asks one Clock, which tests replace.

Tests drive it against moto's server over HTTP, or swap the client for one with botocore's Stubber.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from functools import cached_property
from typing import TYPE_CHECKING, Any, TypeVar

import boto3
from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError

from .diff import Replacement
from .transport import Http, Notice, SetupError, watch

if TYPE_CHECKING:
    from mypy_boto3_cloudformation.client import CloudFormationClient

T = TypeVar("T")
POLL_SECONDS = float(os.environ.get("FBC_POLL_SECONDS", "5"))
NO_CREDENTIALS = "no AWS credentials: set AWS_PROFILE, or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"


class DeployError(Exception):
    """A deploy problem with a message for the user (no traceback)."""


@dataclass(frozen=True)
class Clock:
    """Time as the deploy operations see it: how long to wait between looks at a stack, what time it is
    (for deadlines) and how to wait. The one thing tests replace so that nothing sleeps."""

    poll_seconds: float = POLL_SECONDS
    monotonic: Callable[[], float] = time.monotonic
    sleep: Callable[[float], None] = time.sleep

    def poll(self) -> None:
        """Wait before looking again at something AWS is doing."""
        self.sleep(self.poll_seconds)


class Aws:
    """One region's AWS as the deploy operations use it: clients that say when they retry, and the clock.
    `notice` gets each retry's line (the CLI prints it on stderr)."""

    def __init__(self, sess: Any, clock: Clock | None = None, http: Http | None = None,
                 notice: Notice | None = None) -> None:
        self._session = sess
        self.clock = clock or Clock()
        self.http = http or Http()
        self._notice = notice or (lambda line: print(line, file=sys.stderr))

    def client(self, service: str, *, quick: bool = False, http: Http | None = None) -> Any:
        """A client of `service` that says each retry; `quick`: with the clean-up's short timeouts; `http`: with
        other timeouts (an invoke that may run longer than a control-plane call)."""
        chosen = http or (self.http.quick() if quick else self.http)
        return watch(self._session.client(service, config=chosen.config()), chosen, self._notice)

    def call(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Call an AWS API. Throttling and transient failures are retried by botocore (see client)."""
        try:
            return fn(*args, **kwargs)
        except NoCredentialsError:
            raise SetupError(NO_CREDENTIALS) from None

    def pages(self, fn: Callable[..., Any], *, token: str = "NextToken", **kwargs: Any) -> Iterator[dict[str, Any]]:
        """Each page of a paginated call, fetched only when the one before is read (so a reader can stop
        early). `token` is the service's name for the next page's token (ECS: nextToken)."""
        while True:
            page: dict[str, Any] = self.call(fn, **kwargs)
            yield page
            if not page.get(token):
                return
            kwargs = {**kwargs, token: page[token]}

    @cached_property
    def cloudformation(self) -> CloudFormation:
        return CloudFormation(self)


def connect(region: str, clock: Clock | None = None, notice: Notice | None = None) -> Aws:
    """AWS in `region`. AWS_PROFILE and the credential chain are boto3's own; AWS_ENDPOINT_URL is honoured by
    botocore for every client. AWS_REGION (or AWS_DEFAULT_REGION), if set, must agree with the spec."""
    variable = "AWS_REGION" if os.environ.get("AWS_REGION") else "AWS_DEFAULT_REGION"
    configured = os.environ.get(variable)
    if configured and configured != region:
        raise SetupError(f"{variable} is {configured}, but the spec deploys to {region}: unset {variable} or "
                         f"change spec.region")
    try:
        sess = boto3.Session(region_name=region)
        if sess.get_credentials() is None:
            raise SetupError(f"{NO_CREDENTIALS}, or run where a role is available")
        http = Http.configured(sess)
    except BotoCoreError as exc:  # e.g. a profile that does not exist
        raise SetupError(str(exc)) from None
    return Aws(sess, clock, http, notice)


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


@dataclass(frozen=True)
class Change:
    """A resource change of a change set."""

    action: str  # Add, Modify, Remove...; "" when CloudFormation gives none
    logical_id: str
    resource_type: str
    replacement: Replacement | None  # CloudFormation's verdict for a Modify


@dataclass(frozen=True)
class ChangeSetState:
    status: str  # CREATE_PENDING, CREATE_IN_PROGRESS, CREATE_COMPLETE or FAILED
    reason: str
    changes: tuple[Change, ...]


@dataclass(frozen=True)
class Resource:
    logical_id: str
    physical_id: str  # "" until it is created


@dataclass(frozen=True)
class Drift:
    logical_id: str
    resource_type: str
    status: str  # IN_SYNC, MODIFIED, DELETED or NOT_CHECKED


_DOING = {"CREATE": "creating", "UPDATE": "updating", "DELETE": "deleting", "ROLLBACK": "rolling back",
          "UPDATE_ROLLBACK": "rolling back", "IMPORT": "importing", "IMPORT_ROLLBACK": "rolling back",
          "UPDATE_COMPLETE_CLEANUP": "cleaning up after updating",
          "UPDATE_ROLLBACK_COMPLETE_CLEANUP": "cleaning up after rolling back"}


@dataclass
class Unexecuted:
    """A change set this run created and has neither executed nor deleted."""

    stack: str  # as named when created; its ID once CloudFormation answered
    change_set: str
    creates: bool  # a CREATE change set: the stack exists only for it (REVIEW_IN_PROGRESS) until executed
    deleted: bool = False  # the change set is gone, but not yet the empty stack it created

    def of(self, stack: str, names: dict[str, str]) -> bool:
        return stack == self.stack or names.get(stack) == self.stack


class CloudFormation:
    """The CloudFormation calls fbc makes. `stack` is a name or, to follow one stack through a delete and a
    re-create of the same name, its ID. It remembers what the run asked CloudFormation to change: the change
    sets not executed (`unexecuted`; `abandon` deletes them), and the stacks touched (`touched`, in order), so
    that an interrupted run can say what is left."""

    def __init__(self, aws: Aws) -> None:
        self._aws = aws
        self._cfn: CloudFormationClient = aws.client("cloudformation")
        self.unexecuted: list[Unexecuted] = []
        self.touched: dict[str, bool] = {}  # stack name or ID -> whether this run changed it (not just proposed)
        self.described: dict[str, StackInfo | None] = {}  # what describe last found, by the name asked for
        self._ids: dict[str, str] = {}  # stack ID -> the name it was created under

    def describe(self, stack: str) -> StackInfo | None:
        """None when there is no such stack (or only a deleted one)."""
        self.described[stack] = found = self._describe(stack)
        return found

    def _describe(self, stack: str) -> StackInfo | None:
        try:
            stacks = self._aws.call(self._cfn.describe_stacks, StackName=stack)["Stacks"]
        except ClientError as exc:
            if "does not exist" in error_message(exc):
                return None
            raise
        found = stacks[0]
        if found["StackStatus"] == "DELETE_COMPLETE":
            return None
        return StackInfo(
            name=found["StackName"], stack_id=found["StackId"], status=found["StackStatus"],
            reason=found.get("StackStatusReason", ""),
            outputs={o["OutputKey"]: o["OutputValue"] for o in found.get("Outputs", [])},
            parameters={p["ParameterKey"]: p.get("ParameterValue", "") for p in found.get("Parameters", [])},
            termination_protection=bool(found.get("EnableTerminationProtection")))

    def template(self, stack: str) -> dict[str, Any]:
        """The deployed template, as it was sent (JSON or YAML text, or a document)."""
        body: Any = self._aws.call(self._cfn.get_template, StackName=stack, TemplateStage="Original")["TemplateBody"]
        if isinstance(body, str):
            from cfnlint.decode import decode_str

            decoded, matches = decode_str(body)
            if decoded is None:
                raise DeployError(f"cannot read the deployed template of {stack}: {matches[0].message}")
            return dict(decoded)
        return dict(body)

    def events(self, stack: str, since: datetime) -> list[Event]:
        """Events newer than `since`, oldest first (CloudFormation pages them newest first)."""
        out: list[Event] = []
        for page in self._aws.pages(self._cfn.describe_stack_events, StackName=stack):
            for raw in page["StackEvents"]:
                if raw["Timestamp"] < since:
                    return sorted(out, key=lambda e: e.timestamp)
                out.append(Event(raw["EventId"], raw["Timestamp"], raw.get("LogicalResourceId", ""),
                                 raw.get("ResourceType", ""), raw.get("ResourceStatus", ""),
                                 raw.get("ResourceStatusReason", "")))
        return sorted(out, key=lambda e: e.timestamp)

    def resources(self, stack: str) -> list[Resource]:
        """The stack's resources; none once the stack is gone."""
        try:
            return [Resource(r["LogicalResourceId"], r.get("PhysicalResourceId", ""))
                    for page in self._aws.pages(self._cfn.list_stack_resources, StackName=stack)
                    for r in page.get("StackResourceSummaries", [])]
        except ClientError:
            return []

    def create_change_set(self, stack: str, change_set: str, *, kind: str, parameters: list[dict[str, Any]],
                          capabilities: list[str], tags: list[dict[str, str]], description: str,
                          template: dict[str, str]) -> str:
        """Create a change set (`kind` CREATE or UPDATE; `template` is TemplateBody or TemplateURL) and return
        the stack's ID."""
        record = Unexecuted(stack, change_set, creates=kind == "CREATE")
        self.unexecuted.append(record)  # before the call: an interruption during it may leave one
        self.touched.setdefault(stack, False)
        created = self._aws.call(self._cfn.create_change_set, StackName=stack, ChangeSetName=change_set,
                                 ChangeSetType=kind, Parameters=parameters, Capabilities=capabilities, Tags=tags,
                                 Description=description, **template)
        record.stack = created["StackId"]
        self._ids[record.stack] = stack
        return record.stack

    def change_set(self, stack: str, change_set: str) -> ChangeSetState:
        """The change set's status and its resource changes (all pages)."""
        changes: list[Change] = []
        status, reason = "", ""
        for page in self._aws.pages(self._cfn.describe_change_set, StackName=stack, ChangeSetName=change_set):
            changes += [Change(c.get("Action", ""), c["LogicalResourceId"], c.get("ResourceType", ""),
                               c.get("Replacement"))
                        for c in (item["ResourceChange"] for item in page.get("Changes", [])
                                  if item.get("Type") == "Resource")]
            status, reason = page["Status"], page.get("StatusReason", "")
        return ChangeSetState(status, reason, tuple(changes))

    def execute_change_set(self, stack: str, change_set: str) -> None:
        self.touched[stack] = True
        self._aws.call(self._cfn.execute_change_set, StackName=stack, ChangeSetName=change_set)
        self.unexecuted = [r for r in self.unexecuted if not (r.of(stack, self._ids) and r.change_set == change_set)]

    def delete_change_set(self, stack: str, change_set: str) -> None:
        self._aws.call(self._cfn.delete_change_set, StackName=stack, ChangeSetName=change_set)
        for record in self.unexecuted:
            if record.of(stack, self._ids) and record.change_set == change_set:
                record.deleted = True
        self.unexecuted = [r for r in self.unexecuted if not (r.deleted and not r.creates)]

    def delete(self, stack: str) -> None:
        self.touched[stack] = True
        self._aws.call(self._cfn.delete_stack, StackName=stack)
        self.unexecuted = [r for r in self.unexecuted if not (r.deleted and r.of(stack, self._ids))]

    def protect(self, stack: str, on: bool) -> None:
        """Turn termination protection on or off."""
        self.touched[stack] = True
        self._aws.call(self._cfn.update_termination_protection, StackName=stack, EnableTerminationProtection=on)

    def abandon(self) -> list[str]:
        """After an interruption: delete the change sets this run did not execute, and the empty stack a CREATE
        change set made (as apply does when declined); a phrase for each, for the user. A fresh client with
        short timeouts: the interrupted call may have left the old one mid-request."""
        self._cfn = self._aws.client("cloudformation", quick=True)
        said = []
        for record in self.unexecuted:
            name = self._ids.get(record.stack, record.stack)
            try:
                if not record.deleted:
                    self._aws.call(self._cfn.delete_change_set, StackName=record.stack, ChangeSetName=record.change_set)
                found = self._describe(record.stack) if record.creates else None
                if found is not None and found.status == "REVIEW_IN_PROGRESS":
                    self._aws.call(self._cfn.delete_stack, StackName=found.stack_id)
            except ClientError as exc:
                if error_code(exc) in ("ChangeSetNotFound", "ChangeSetNotFoundException") or (
                        "does not exist" in error_message(exc)):
                    continue  # the interruption came before CloudFormation made it
                said.append(f"change set {record.change_set} of {name} is left ({error_code(exc)}: delete it with "
                            f"aws cloudformation delete-change-set --stack-name {name} --change-set-name "
                            f"{record.change_set})")
                continue
            except BotoCoreError as exc:
                said.append(f"change set {record.change_set} of {name} may be left ({exc})")
                continue
            said.append(f"deleted change set {record.change_set} (not executed)"
                        + (f" and the empty stack {name} it created" if record.creates else ""))
        self.unexecuted = []
        return said

    def left(self) -> list[str]:
        """What each stack this run touched is doing now, a phrase each: an *_IN_PROGRESS status means
        CloudFormation goes on without fbc."""
        said, seen = [], set()
        for stack, changed in self.touched.items():
            name = self._ids.get(stack, stack)
            try:
                found = self._describe(stack)
            except (ClientError, BotoCoreError) as exc:
                said.append(f"could not look at {name} ({exc}); fbc status tells")
                continue
            if found is None:
                if changed:
                    said.append(f"{name} is deleted")
                continue
            if found.stack_id in seen:
                continue
            seen.add(found.stack_id)
            if found.status.endswith("_IN_PROGRESS") and found.status != "REVIEW_IN_PROGRESS":
                doing = _DOING.get(found.status.removesuffix("_IN_PROGRESS"), "working on")
                said.append(f"CloudFormation is still {doing} {found.name} ({found.status}); fbc status follows it")
            else:
                said.append(f"{found.name} is {found.status}" + ("" if changed else " (unchanged)"))
        return said

    def detect_drift(self, stack: str) -> str:
        """Start drift detection; returns its ID for drift_status."""
        return self._aws.call(self._cfn.detect_stack_drift, StackName=stack)["StackDriftDetectionId"]

    def drift_status(self, detection: str) -> tuple[str, str]:
        """(detection status, the stack's drift status: UNKNOWN until detected)."""
        result = self._aws.call(self._cfn.describe_stack_drift_detection_status, StackDriftDetectionId=detection)
        return result["DetectionStatus"], result.get("StackDriftStatus", "UNKNOWN")

    def drifts(self, stack: str) -> list[Drift]:
        """Every resource's drift from the last detection."""
        return [Drift(r["LogicalResourceId"], r["ResourceType"], r["StackResourceDriftStatus"])
                for page in self._aws.pages(self._cfn.describe_stack_resource_drifts, StackName=stack)
                for r in page.get("StackResourceDrifts", [])]


# --- added for issue 14 (destroy's guard): a small read, kept apart from the class above --------------------

def stack_tags(aws: Aws, stack: str) -> dict[str, str]:
    """The stack's tags (fbc sets app, environment, profile, managed-by); none when there is no such stack."""
    try:
        found = aws.call(aws.client("cloudformation").describe_stacks, StackName=stack)["Stacks"]
    except ClientError as exc:
        if "does not exist" in error_message(exc):
            return {}
        raise
    return {t["Key"]: t["Value"] for t in found[0].get("Tags", [])} if found else {}
