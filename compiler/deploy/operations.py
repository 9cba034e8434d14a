"""apply, diff against a stack and bootstrap (destroy.py: destroy; status.py: status; parameters.py: parameter values):
CloudFormation change sets made for people and for CI. Everything user-facing goes through `say` (and
`confirm`), so the CLI decides how it is shown."""

from __future__ import annotations

import hashlib
import json
import os
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from botocore.exceptions import ClientError

from ..build import Compiled
from ..emit import MAX_INLINE_BYTES
from .aws import Aws, Change, CloudFormation, DeployError, Event, StackInfo, error_code, error_message
from .diff import ResourceChange, TemplateDiff, ValueChange, diff_templates, with_change_set, with_values
from .parameters import check_given, plan_parameters, resolve_parameters, value_changes

Say = Callable[[str], None]
Confirm = Callable[[str], bool]

SUCCESS = {"CREATE_COMPLETE", "UPDATE_COMPLETE", "IMPORT_COMPLETE", "DELETE_COMPLETE"}
BUSY_EXCEPT = {"REVIEW_IN_PROGRESS"}  # a stack that only has a change set waiting is not busy
NO_CHANGES = ("didn't contain changes", "No updates are to be performed", "no changes")
CAPABILITIES = ["CAPABILITY_IAM", "CAPABILITY_NAMED_IAM"]
SHOWN_SECURITY = 12
STACK_TYPE = "AWS::CloudFormation::Stack"
# Another run in the way: its executed change set deleted ours, its update made ours obsolete, its stack
# exists now (a CREATE change set is refused), or its abandoned empty stack took ours along.
RACE_CODES = {"ChangeSetNotFound", "ChangeSetNotFoundException", "InvalidChangeSetStatus",
              "InvalidChangeSetStatusException", "AlreadyExistsException"}


@dataclass(frozen=True)
class Target:
    compiled: Compiled
    stack_name: str

    @property
    def body(self) -> str:
        """The template as sent: minified, so more stacks fit under the inline limit."""
        return json.dumps(json.loads(self.compiled.built.body), separators=(",", ":"), sort_keys=True)

    @property
    def template(self) -> dict[str, Any]:
        return json.loads(self.compiled.built.body)  # type: ignore[no-any-return]


def busy(stack: StackInfo) -> bool:
    return stack.status.endswith("_IN_PROGRESS") and stack.status not in BUSY_EXCEPT


def _template_location(aws: Aws, target: Target, bucket: str | None, say: Say) -> dict[str, str]:
    body = target.body
    if len(body.encode()) <= MAX_INLINE_BYTES:
        return {"TemplateBody": body}
    region = target.compiled.plan.region
    if bucket is None:
        bucket = asset_bucket_name(aws, region)
    key = f"{target.stack_name}/{hashlib.sha256(body.encode()).hexdigest()}.json"
    try:
        aws.call(aws.client("s3").put_object, Bucket=bucket, Key=key, Body=body.encode(),
                 ContentType="application/json")
    except ClientError as exc:
        if error_code(exc) in ("NoSuchBucket", "404", "AccessDenied", "403"):
            raise DeployError(f"the template is {len(body.encode())} bytes, over the {MAX_INLINE_BYTES}-byte inline "
                              f"limit, and bucket {bucket} is not usable ({error_code(exc)}): run `fbc bootstrap` "
                              f"once, or pass --bucket") from None
        raise
    say(f"template is {len(body.encode())} bytes: uploaded to s3://{bucket}/{key}")
    return {"TemplateURL": f"https://{bucket}.s3.{region}.amazonaws.com/{key}"}


def asset_bucket_name(aws: Aws, region: str) -> str:
    account = aws.call(aws.client("sts").get_caller_identity)["Account"]
    return f"fbc-assets-{account}-{region}"


def _wait_change_set(aws: Aws, name: str, change_set: str) -> tuple[bool, tuple[Change, ...]]:
    """(has changes, changes) once CloudFormation has computed the change set."""
    while True:
        state = aws.cloudformation.change_set(name, change_set)
        if state.status == "CREATE_COMPLETE":
            return True, state.changes
        if state.status == "FAILED":
            if any(phrase in state.reason for phrase in NO_CHANGES):
                return False, ()
            raise DeployError(f"CloudFormation rejected the change set: {state.reason}")
        aws.clock.poll()


ChangeSet = tuple[str, str, bool, tuple[Change, ...]]  # name, stack ID, has changes, the changes


def _change_set(aws: Aws, target: Target, stack: StackInfo | None, parameters: list[dict[str, Any]],
                bucket: str | None, say: Say) -> ChangeSet:
    name = f"fbc-{datetime.now(UTC):%Y%m%d%H%M%S}-{uuid.uuid4().hex[:6]}"
    plan = target.compiled.plan
    kind = "UPDATE" if stack is not None and stack.status != "REVIEW_IN_PROGRESS" else "CREATE"
    stack_id = aws.cloudformation.create_change_set(  # follow the stack by ID: names are reused, IDs never
        target.stack_name, name, kind=kind, parameters=parameters, capabilities=CAPABILITIES,
        tags=[{"Key": k, "Value": v} for k, v in plan.tags], description=f"fbc {plan.profile}/{plan.environment}",
        template=_template_location(aws, target, bucket, say))
    has_changes, changes = _wait_change_set(aws, stack_id, name)
    return name, stack_id, has_changes, changes


def _summary(changes: list[ResourceChange], values: list[ValueChange]) -> list[str]:
    lines = []
    for c in sorted(changes, key=lambda c: (c.action, c.logical_id)):
        replace = {"True": " [replace]", "Conditional": " [may replace]"}.get(c.replacement, "")
        lines.append(f"  {c.action:<7} {c.logical_id} ({c.resource_type}){replace}")
    for v in values:  # an image among them: what runs changes, so it is always said
        old = "(absent)" if v.old is None else json.dumps(v.old)
        lines.append(f"  parameter {v.name}: {old} -> {json.dumps(v.new)}" + (" (older tag)" if v.rollback else ""))
    return lines


@contextmanager
def _race(name: str) -> Iterator[None]:
    """Say so when another run's change set or stack got in the way of this one's (RACE_CODES, and the same
    refusals as ValidationError): the stack is then that run's to finish."""
    try:
        yield
    except ClientError as exc:
        code, message = error_code(exc), error_message(exc)
        if code not in RACE_CODES and not (code == "ValidationError" and (
                "state and can not be updated" in message or "already exists" in message
                or (message.startswith("Stack") and "does not exist" in message))):
            raise
        raise DeployError(f"another apply is deploying {name}; fbc status follows it") from None


def follow(aws: Aws, name: str, since: datetime, total: int, say: Say, seen: set[str] | None = None,
           timeout: float = 7200) -> StackInfo | None:
    """Stream events with progress until the stack reaches a final state; None once it is deleted."""
    cf = aws.cloudformation
    seen = set(seen or ())
    latest: dict[str, str] = {}
    deadline = aws.clock.monotonic() + timeout
    while True:
        for event in cf.events(name, since):
            if event.event_id in seen:
                continue
            seen.add(event.event_id)
            if event.resource_type != STACK_TYPE:
                latest[event.logical_id] = event.status
            done = sum(status.endswith("_COMPLETE") for status in latest.values())
            say(_event_line(event, done, total))
        stack = cf.describe(name)
        if stack is None or not stack.status.endswith("_IN_PROGRESS"):
            return stack
        if aws.clock.monotonic() > deadline:
            raise DeployError(f"{name} is still {stack.status} after {timeout:.0f}s; follow it with fbc status")
        aws.clock.poll()


def _event_line(event: Event, done: int, total: int) -> str:
    reason = f"  {event.reason}" if event.reason and "FAILED" in event.status else ""
    return (f"[{min(done, total):>3}/{total}] {event.timestamp:%H:%M:%S} {event.status:<20} "
            f"{event.logical_id} ({event.resource_type}){reason}")


def _failures(cf: CloudFormation, name: str, since: datetime) -> list[str]:
    return [f"{e.logical_id} ({e.resource_type}): {e.reason}" for e in cf.events(name, since)
            if e.status.endswith("_FAILED") and e.resource_type != STACK_TYPE and e.reason
            and "Resource creation cancelled" not in e.reason]


def _last_event_time(cf: CloudFormation, name: str) -> tuple[datetime, set[str]]:
    events = cf.events(name, datetime.min.replace(tzinfo=UTC))
    if not events:
        return datetime.min.replace(tzinfo=UTC), set()
    return events[-1].timestamp, {e.event_id for e in events}


def apply(aws: Aws, target: Target, *, given: dict[str, str], assume_yes: bool, interactive: bool,
          bucket: str | None, say: Say, confirm: Confirm) -> int:
    """Returns the exit code: 0 deployed or nothing to do, 1 failed or declined."""
    cf = aws.cloudformation
    name = target.stack_name
    stack = cf.describe(name)
    if stack is not None and stack.status == "ROLLBACK_COMPLETE":
        say(f"{name} is ROLLBACK_COMPLETE: its creation failed and it cannot be updated; deleting it first")
        since, seen = _last_event_time(cf, stack.stack_id)
        cf.delete(stack.stack_id)
        follow(aws, stack.stack_id, since, 0, say, seen)
        stack = None
    if stack is not None and busy(stack):
        raise DeployError(f"{name} is busy ({stack.status}); wait for it to finish (fbc status) and apply again")

    deployed = stack if stack is not None and stack.status != "REVIEW_IN_PROGRESS" else None
    previous_template = cf.template(name) if deployed is not None else None
    parameters = resolve_parameters(target.template, given, deployed, previous_template)
    values = value_changes(target.template, parameters, deployed) if deployed is not None else []
    if deployed is not None and previous_template == target.template and not values:
        say(f"{name}: no changes")
        return 0
    with _race(name):
        change_set, stack_id, has_changes, changes = _change_set(aws, target, stack, parameters, bucket, say)
        if not has_changes:
            _abandon(aws, stack_id, change_set, created=stack is None, say=say)
            say(f"{name}: no changes")
            return 0
        # Both verdicts count: the offline table's and the change set's (item 10 of issue 14).
        diff = with_change_set(with_values(diff_templates(previous_template, target.template), target.template,
                                           values), changes)
        say(f"{'Update' if deployed else 'Create'} {name}: {len(diff.resources)} change(s)")
        for line in _summary(diff.resources, values):
            say(line)
        for sec in diff.security[:SHOWN_SECURITY]:
            say(f"  security: {'broadens' if sec.broadens else 'narrows'} {sec.kind} {sec.resource}: {sec.detail}")
        if len(diff.security) > SHOWN_SECURITY:
            say(f"  security: ... {len(diff.security) - SHOWN_SECURITY} more (fbc diff lists them all)")
        risky = diff.risky
        if risky and not assume_yes:
            if not interactive:
                _abandon(aws, stack_id, change_set, created=stack is None, say=say)
                raise DeployError(f"this change {_why(risky)}: confirm on a terminal, or pass --yes")
            if not confirm("Deploy these changes?"):
                _abandon(aws, stack_id, change_set, created=stack is None, say=say)
                say("not deployed")
                return 1
        since, seen = _last_event_time(cf, stack_id)
        cf.execute_change_set(stack_id, change_set)
    # Progress counts what CloudFormation will touch: its change set's resources (an emulator's may be none).
    final = follow(aws, stack_id, since, len(changes) or len(diff.resources), say, seen)
    if final is None or final.status not in SUCCESS:
        status = final.status if final else "DELETED"
        say(f"{name}: {status}" + (f" ({final.reason})" if final and final.reason else ""))
        for failure in _failures(cf, stack_id, since) if final else []:
            say(f"  failed: {failure}")
        say("rolled back: the stack is as it was before this apply" if status == "UPDATE_ROLLBACK_COMPLETE"
            else "rolled back: nothing of this stack remains; the next apply recreates it"
            if status == "ROLLBACK_COMPLETE" else f"the stack is left {status}")
        return 1
    if target.compiled.plan.environment == "prod" and not final.termination_protection:
        cf.protect(stack_id, True)
        say(f"{name}: termination protection on (prod)")
    say(f"{name}: {final.status}")
    for key, value in sorted(final.outputs.items()):
        say(f"  {key} = {value}")
    return 0


def _abandon(aws: Aws, stack_id: str, change_set: str, *, created: bool, say: Say) -> None:
    """Drop an unexecuted change set, and the empty REVIEW_IN_PROGRESS stack a first one created, unless another
    run has a change set waiting on that stack by now: deleting it would take that run's change set along."""
    aws.cloudformation.delete_change_set(stack_id, change_set)
    if not created:
        return
    others = waiting_change_sets(aws, stack_id)
    if others:
        say(f"left the empty stack: another run's change set is waiting on it ({', '.join(others)})")
        return
    aws.cloudformation.delete(stack_id)


def waiting_change_sets(aws: Aws, stack: str) -> list[str]:
    """The names of the change sets on `stack` (a name or an ID), as CloudFormation lists them."""
    try:
        return [s["ChangeSetName"] for page in aws.pages(aws.client("cloudformation").list_change_sets, StackName=stack)
                for s in page.get("Summaries", [])]
    except ClientError as exc:
        if "does not exist" in error_message(exc):
            return []
        raise


def _why(reasons: list[str]) -> str:
    """'removes X; replaces Y; broadens access (12 statements or rules)' in one line."""
    plain = [r for r in reasons if not r.startswith("broadens")]
    broadening = len(reasons) - len(plain)
    parts = plain[:5] + ([f"... {len(plain) - 5} more"] if len(plain) > 5 else [])
    if broadening:
        parts.append(f"broadens IAM, network or invoke access ({broadening} statement(s) or rule(s))")
    return "; ".join(parts)


def diff_against_stack(aws: Aws, target: Target, given: dict[str, str], bucket: str | None,
                       say: Say) -> tuple[TemplateDiff, dict[str, Any] | None]:
    """Compare with the deployed stack: its template, and its parameter values with those apply would send
    (given, kept or defaults) and what they change. Replacement verdicts: the offline table's and those of a
    change set, which is then deleted. Returns the diff and the deployed template (None: not deployed), which
    diff --cost prices and the comment reads NoEcho parameters from, without reading it again."""
    cf = aws.cloudformation
    check_given(target.template, given)
    stack = cf.describe(target.stack_name)
    if stack is None or stack.status == "REVIEW_IN_PROGRESS":
        return diff_templates(None, target.template), None
    deployed = cf.template(target.stack_name)
    parameters, missing = plan_parameters(target.template, given, stack, deployed)
    if missing:
        say(f"(apply needs parameters to provide: {', '.join(missing)})")
    diff = with_values(diff_templates(deployed, target.template), target.template,
                       value_changes(target.template, parameters, stack))
    if diff.empty or busy(stack) or missing:
        return diff, deployed
    try:
        change_set, stack_id, has_changes, changes = _change_set(aws, target, stack, parameters, bucket, say)
    except (DeployError, ClientError) as exc:
        say(f"(replacement verdicts are from the offline table: {exc})")
        return diff, deployed
    try:
        return (with_change_set(diff, changes) if has_changes else diff), deployed
    finally:
        cf.delete_change_set(stack_id, change_set)


def bootstrap(aws: Aws, region: str, bucket: str | None, say: Say) -> str:
    """The bucket for templates over the inline limit: encrypted, private, TLS only, old uploads expire."""
    s3 = aws.client("s3")
    name = bucket or asset_bucket_name(aws, region)
    try:
        kwargs: dict[str, Any] = {"Bucket": name}
        if region != "us-east-1":
            kwargs["CreateBucketConfiguration"] = {"LocationConstraint": region}
        aws.call(s3.create_bucket, **kwargs)
        say(f"created s3://{name}")
    except ClientError as exc:
        if error_code(exc) != "BucketAlreadyOwnedByYou":
            raise DeployError(f"cannot create bucket {name}: {error_message(exc)}") from None
        say(f"s3://{name} exists; making sure it is configured")
    aws.call(s3.put_public_access_block, Bucket=name, PublicAccessBlockConfiguration={
        "BlockPublicAcls": True, "IgnorePublicAcls": True, "BlockPublicPolicy": True, "RestrictPublicBuckets": True})
    aws.call(s3.put_bucket_encryption, Bucket=name, ServerSideEncryptionConfiguration={
        "Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}, "BucketKeyEnabled": True}]})
    aws.call(s3.put_bucket_lifecycle_configuration, Bucket=name, LifecycleConfiguration={"Rules": [
        {"ID": "expire-templates", "Status": "Enabled", "Filter": {"Prefix": ""}, "Expiration": {"Days": 30}}]})
    if os.environ.get("AWS_ENDPOINT_URL", "").startswith("http://"):
        # A local emulator over plain HTTP would be locked out by a TLS-only policy; AWS itself is HTTPS only.
        say("endpoint is plain HTTP (a local emulator): TLS-only bucket policy not set")
        return name
    aws.call(s3.put_bucket_policy, Bucket=name, Policy=json.dumps({"Version": "2012-10-17", "Statement": [{
        "Sid": "TlsOnly", "Effect": "Deny", "Principal": "*", "Action": "s3:*",
        "Resource": [f"arn:aws:s3:::{name}", f"arn:aws:s3:::{name}/*"],
        "Condition": {"Bool": {"aws:SecureTransport": "false"}}}]}))
    return name
