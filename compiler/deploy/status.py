"""status: the stack's state, outputs, last events, what an operator looks at first (queues, dead letters,
running tasks, the scheduler's last errors, each with its alarms' states), and drift if asked. Everything
user-facing goes through `say`.

The stack's physical resources come from CloudFormation, matched by logical ID with the build's manifest (what
each resource serves and its role): `Deployed`, which fbc logs and fbc run read too. No name is rebuilt here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from botocore.exceptions import ClientError

from ..emit.manifest import SCHEDULER, Entry, Manifest, Node, NodeKind, Role
from .aws import Aws, error_code
from .operations import Say, waiting_change_sets

T = TypeVar("T")
QUEUE_ATTRIBUTES = ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible",
                    "ApproximateNumberOfMessagesDelayed"]
ERRORS_SINCE = timedelta(hours=1)  # how far back the scheduler's last errors are looked for
ERROR_PATTERN = '?ERROR ?"Task timed out"'  # the runtime's and Lambda's own error lines
SHOWN_ERRORS = 3


def status(aws: Aws, name: str, *, drift: bool, events: int, say: Say,
           manifest: Callable[[], Manifest | None] | None = None) -> int:
    """With the build's manifest (made only once the stack is found deployed), also what an operator looks at
    first (`operating`)."""
    cf = aws.cloudformation
    stack = cf.describe(name)
    if stack is None:
        say(f"{name}: not deployed")
        return 1
    if stack.status == "REVIEW_IN_PROGRESS":  # created for a change set that was never executed: nothing runs
        waiting = waiting_change_sets(aws, stack.stack_id)
        say(f"{name}: not deployed" + (f" (a change set is waiting: {', '.join(waiting)})" if waiting else
                                       " (an empty stack from a change set never executed)"))
        return 1
    say(f"{name}: {stack.status}" + (f" ({stack.reason})" if stack.reason else ""))
    say(f"  termination protection: {'on' if stack.termination_protection else 'off'}")
    if stack.outputs:
        say("outputs:")
        for key, value in sorted(stack.outputs.items()):
            say(f"  {key} = {value}")
    recent = cf.events(name, datetime.min.replace(tzinfo=UTC))[-events:]
    if recent:
        say("last events:")
        for event in recent:
            reason = f"  {event.reason}" if event.reason else ""
            say(f"  {event.timestamp:%Y-%m-%d %H:%M:%S} {event.status:<20} {event.logical_id}{reason}")
    built = manifest() if manifest is not None else None
    if built is not None:
        operating(aws, deployed(aws, name, built), say)
    if drift:
        return _drift(aws, name, say)
    return 0


def _drift(aws: Aws, name: str, say: Say) -> int:
    cf = aws.cloudformation
    detection = cf.detect_drift(name)
    while True:
        detection_status, stack_drift = cf.drift_status(detection)
        if detection_status != "DETECTION_IN_PROGRESS":
            break
        aws.clock.poll()
    drifted = [d for d in cf.drifts(name) if d.status not in ("IN_SYNC", "NOT_CHECKED")]
    say(f"drift: {stack_drift}" + (f", {len(drifted)} resource(s)" if drifted else ""))
    for item in drifted:
        say(f"  {item.status:<9} {item.logical_id} ({item.resource_type})")
    return 0


# --- the deployed resources, by what they serve ----------------------------------------------------------------

@dataclass(frozen=True)
class Deployed:
    """A deployed stack's resources: the manifest's entries with CloudFormation's physical IDs."""

    stack: str
    manifest: Manifest
    physical: dict[str, str]  # logical ID -> physical ID; "" (or absent) where CloudFormation has none

    def find(self, node: Node | None = None, role: Role | None = None,
             type: str | None = None) -> list[tuple[Entry, str]]:
        """(entry, physical ID) of each matching resource, by logical ID."""
        return [(e, self.physical.get(e.logical_id, "")) for e in self.manifest.find(node, role, type)]

    def one(self, node: Node | None = None, role: Role | None = None, type: str | None = None) -> str:
        """The physical ID of the one matching resource; "" when there is none (or it has none)."""
        entry = self.manifest.one(node, role, type)
        return self.physical.get(entry.logical_id, "") if entry else ""

    def nodes(self, kind: NodeKind) -> list[Node]:
        """The nodes of that kind, in the manifest's order."""
        return list(dict.fromkeys(e.node for e in self.manifest if e.node.kind == kind))


def deployed(aws: Aws, stack: str, manifest: Manifest) -> Deployed:
    return Deployed(stack, manifest, {r.logical_id: r.physical_id for r in aws.cloudformation.resources(stack)})


# --- what an operator looks at first ----------------------------------------------------------------------------

def operating(aws: Aws, found: Deployed, say: Say) -> None:
    """Queues (depth, the oldest message's age, dead letters), services (running tasks), the scheduler (dead
    letters, last errors), each with the states of its alarms. A part AWS will not show (a permission, a
    resource not created) is said in its place; the rest is still shown."""
    states = _alarm_states(aws, found)
    queues = found.nodes("queue")
    if queues:
        say("queues:")
    for node in queues:
        say(f"  {node.name}: {_queue(aws, found, node)}")
        _alarms(found, node, states, say)
    services = found.nodes("service")
    if services:
        say("services:")
    for node in services:
        say(f"  {node.name}: {_service(aws, found, node)}")
        _alarms(found, node, states, say)
    if found.manifest.find(SCHEDULER):
        say("scheduler:")
        dead = found.one(SCHEDULER, "dead-letter")
        say(f"  dead letters: {_attempt(lambda: _count(aws, dead)) if dead else 'not created'}")
        errors = _attempt(lambda: _scheduler_errors(aws, found))
        for line in [f"last errors: {errors}"] if isinstance(errors, str) else errors:
            say(f"  {line}")
        _alarms(found, SCHEDULER, states, say)
    for entry, _ in found.find(Node("stack"), "alarm"):
        say(f"stack alarm: {entry.logical_id} {states.get(entry.logical_id, 'not found')}")


def _attempt(read: Callable[[], T]) -> T | str:
    try:
        return read()
    except ClientError as exc:
        return f"(not shown: {error_code(exc)})"


def _queue(aws: Aws, found: Deployed, node: Node) -> str:
    url, dead = found.one(node, "queue"), found.one(node, "dead-letter")
    if not url:
        return "not created"
    attributes = _attempt(lambda: aws.call(aws.client("sqs").get_queue_attributes, QueueUrl=url,
                                           AttributeNames=QUEUE_ATTRIBUTES)["Attributes"])
    if isinstance(attributes, str):
        return attributes
    depth = f"{attributes.get('ApproximateNumberOfMessages', '?')} waiting"
    age = _attempt(lambda: _oldest(aws, url))
    parts = [depth + (f" (oldest {age})" if age else ""),
             f"{attributes.get('ApproximateNumberOfMessagesNotVisible', '?')} in flight"]
    if attributes.get("ApproximateNumberOfMessagesDelayed", "0") != "0":
        parts.append(f"{attributes['ApproximateNumberOfMessagesDelayed']} delayed")
    parts.append(f"dead letters {_attempt(lambda: _count(aws, dead)) if dead else 'none (no dead-letter queue)'}")
    return ", ".join(parts)


def _count(aws: Aws, url: str) -> str:
    return str(aws.call(aws.client("sqs").get_queue_attributes, QueueUrl=url,
                        AttributeNames=["ApproximateNumberOfMessages"])["Attributes"]["ApproximateNumberOfMessages"])


def _oldest(aws: Aws, url: str) -> str:
    """The age of the queue's oldest message, from its CloudWatch metric (SQS has no attribute for it): the
    last 15 minutes' latest maximum; "" when the metric has no data (an empty or idle queue)."""
    now = datetime.now(UTC)
    points = aws.call(aws.client("cloudwatch").get_metric_statistics, Namespace="AWS/SQS",
                      MetricName="ApproximateAgeOfOldestMessage",
                      Dimensions=[{"Name": "QueueName", "Value": url.rstrip("/").rsplit("/", 1)[-1]}],
                      StartTime=now - timedelta(minutes=15), EndTime=now, Period=60,
                      Statistics=["Maximum"])["Datapoints"]
    if not points:
        return ""
    return _duration(int(max(points, key=lambda p: p["Timestamp"])["Maximum"]))


def _duration(seconds: int) -> str:
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m {seconds % 60:02d}s"
    return f"{seconds // 3600}h {seconds % 3600 // 60:02d}m"


def _service(aws: Aws, found: Deployed, node: Node) -> str:
    cluster = found.one(Node("stack"), "cluster", "AWS::ECS::Cluster")
    service = found.one(node, "compute", "AWS::ECS::Service")
    if service:
        return str(_attempt(lambda: _ecs_service(aws, cluster, service)))
    if found.manifest.find(node, "dispatch"):  # one task per message, started by a Pipe
        task = found.one(node, "task", "AWS::ECS::TaskDefinition")
        family = task.rsplit("/", 1)[-1].rsplit(":", 1)[0]  # from the ARN CloudFormation gave
        if not (cluster and family):
            return "not created"
        return f"{_attempt(lambda: _running(aws, cluster, family))} task(s) running (started by its Pipe)"
    if found.find(node, "function", "AWS::Lambda::Function"):
        return "a Lambda function (no tasks)"
    return "not created"


def _ecs_service(aws: Aws, cluster: str, service: str) -> str:
    found = aws.call(aws.client("ecs").describe_services, cluster=cluster, services=[service])["services"]
    if not found:
        return "not found in its cluster"
    s = found[0]
    pending = f", {s['pendingCount']} pending" if s.get("pendingCount") else ""
    return f"{s.get('runningCount', 0)}/{s.get('desiredCount', 0)} task(s) running{pending}"


def _running(aws: Aws, cluster: str, family: str) -> int:
    return sum(len(page.get("taskArns", [])) for page in aws.pages(
        aws.client("ecs").list_tasks, token="nextToken", cluster=cluster, family=family, desiredStatus="RUNNING"))


def _scheduler_errors(aws: Aws, found: Deployed) -> list[str]:
    """The scheduler's last few error lines of the past hour, from its log group."""
    group = found.one(SCHEDULER, "logs", "AWS::Logs::LogGroup")
    if not group:
        return ["last errors: no log group"]
    since = int((datetime.now(UTC) - ERRORS_SINCE).timestamp() * 1000)
    events: list[dict[str, Any]] = []
    for page in aws.pages(aws.client("logs").filter_log_events, logGroupName=group, startTime=since,
                          filterPattern=ERROR_PATTERN):
        events += [e for e in page.get("events", []) if _is_error(e.get("message", ""))]
    if not events:
        return [f"last errors ({_duration(int(ERRORS_SINCE.total_seconds()))}): none"]
    events.sort(key=lambda e: e["timestamp"])
    return [f"last errors ({len(events)} in {_duration(int(ERRORS_SINCE.total_seconds()))}):"] + [
        f"  {datetime.fromtimestamp(e['timestamp'] / 1000, UTC):%Y-%m-%d %H:%M:%S} {_short(e['message'])}"
        for e in events[-SHOWN_ERRORS:]]


def _is_error(message: str) -> bool:
    """What ERROR_PATTERN means, checked again here: an emulator may not apply the pattern."""
    return "ERROR" in message or "Task timed out" in message


def _short(message: str, width: int = 160) -> str:
    line = " ".join(message.split())
    return line if len(line) <= width else line[:width - 3] + "..."


def _alarm_states(aws: Aws, found: Deployed) -> dict[str, str]:
    """Logical ID -> state (OK, ALARM, INSUFFICIENT_DATA) of every alarm of the stack CloudWatch knows."""
    names = {physical: entry.logical_id for entry, physical in found.find(role="alarm") if physical}
    states: dict[str, str] = {}
    listed = list(names)
    try:
        for start in range(0, len(listed), 100):  # DescribeAlarms takes 100 names at most
            for page in aws.pages(aws.client("cloudwatch").describe_alarms, AlarmNames=listed[start:start + 100],
                                  AlarmTypes=["MetricAlarm", "CompositeAlarm"]):
                for alarm in page.get("MetricAlarms", []) + page.get("CompositeAlarms", []):
                    if alarm["AlarmName"] in names:
                        states[names[alarm["AlarmName"]]] = alarm["StateValue"]
    except ClientError as exc:
        return dict.fromkeys(names.values(), f"(not shown: {error_code(exc)})")
    return states


def _alarms(found: Deployed, node: Node, states: dict[str, str], say: Say) -> None:
    alarms = [(entry.logical_id, physical) for entry, physical in found.find(node, "alarm")]
    if alarms:  # not created: CloudFormation has no physical ID for it (an emulator skips alarms)
        say("    alarms: " + ", ".join(f"{name} {states.get(name) or ('not found' if physical else 'not created')}"
                                      for name, physical in alarms))
