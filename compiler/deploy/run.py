"""fbc run: fire one schedule now, through the deployed scheduler function, with the event its schedule sends.

The event is the deployed schedule's own (its target's Input, read from EventBridge Scheduler), or the build's
when the schedule cannot be read, with `scheduledTime` set to `manual:<uuid>` and `"manual": true`. The runtime
makes one execution per (schedule, scheduledTime) (runtime/scheduler.py), so a manual run is never taken for
the real firing of any time, and a retried invoke of the same run is never a second execution.

Without --wait the function is invoked as the schedule invokes it (asynchronously: Lambda's retries and the
dead-letter queue apply) and only the acceptance is known; with --wait it is invoked synchronously, and the
execution's ID (created, or already there) or the function's error is shown.
"""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from botocore.exceptions import ClientError

from ..emit.manifest import SCHEDULER, schedule
from ..emit.scheduler import TIMEOUT
from ..plan import Plan, SchedulePlan
from .aws import Aws, DeployError, error_code
from .status import Deployed

MANUAL_PREFIX = "manual:"
SHOWN_LOG_LINES = 10


@dataclass(frozen=True)
class Outcome:
    mark: str  # the run's scheduledTime: manual:<uuid>
    request_id: str
    execution: str | None = None  # with --wait: the execution the handler made or found
    created: bool = False
    error: str | None = None  # with --wait: the function's error
    log_tail: tuple[str, ...] = ()


def chosen(plan: Plan, name: str) -> SchedulePlan:
    for candidate in plan.schedules:
        if candidate.name == name:
            return candidate
    known = ", ".join(s.name for s in plan.schedules) or "none"
    raise ValueError(f"{name!r} is not a schedule of the spec in {plan.environment} (its schedules: {known})")


def event(aws: Aws, found: Deployed, planned: SchedulePlan, note: Callable[[str], None]) -> dict[str, Any]:
    """The schedule's event as deployed (or built), marked as a manual run."""
    sent = planned.event()
    physical = found.one(schedule(planned.name), "schedule", "AWS::Scheduler::Schedule")
    try:
        if not physical:
            raise LookupError("not in the stack")
        deployed = json.loads(aws.call(aws.client("scheduler").get_schedule, Name=physical)["Target"]["Input"])
        if deployed != sent:
            note(f"{planned.name}: the deployed schedule's event differs from this build's; firing the deployed one")
        sent = deployed
    except (ClientError, LookupError, KeyError, ValueError) as exc:
        why = error_code(exc) if isinstance(exc, ClientError) else str(exc)
        note(f"{planned.name}: the deployed schedule could not be read ({why}); firing this build's event")
    return {**sent, "scheduledTime": f"{MANUAL_PREFIX}{uuid.uuid4()}", "manual": True}


def fire(aws: Aws, found: Deployed, payload: dict[str, Any], *, wait: bool) -> Outcome:
    function = found.one(SCHEDULER, "function", "AWS::Lambda::Function")
    if not function:
        raise DeployError(f"the scheduler function is not in {found.stack}: is the stack deployed (fbc status)?")
    body = json.dumps(payload).encode()
    mark = str(payload["scheduledTime"])
    if not wait:
        answer = aws.call(aws.client("lambda").invoke, FunctionName=function, InvocationType="Event", Payload=body)
        return Outcome(mark, _request_id(answer))
    answer = aws.call(_waiting_client(aws).invoke, FunctionName=function, InvocationType="RequestResponse",
                      LogType="Tail", Payload=body)
    raw = answer["Payload"].read() if hasattr(answer.get("Payload"), "read") else answer.get("Payload", b"")
    result = json.loads(raw or b"null")
    tail = tuple(base64.b64decode(answer.get("LogResult", "")).decode(errors="replace").splitlines())
    if answer.get("FunctionError"):
        error = (f"{result.get('errorType', answer['FunctionError'])}: {result.get('errorMessage', '')}"
                 if isinstance(result, dict) else str(result))
        return Outcome(mark, _request_id(answer), error=error, log_tail=tail[-SHOWN_LOG_LINES:])
    if not isinstance(result, dict) or "execution" not in result:
        return Outcome(mark, _request_id(answer), error=f"unexpected answer from the scheduler: {result!r}")
    return Outcome(mark, _request_id(answer), str(result["execution"]), bool(result.get("created")))


def _waiting_client(aws: Aws) -> Any:
    """A Lambda client that waits as long as the function may run (a cold start migrates the database): the
    run's 20 s read timeout would otherwise give up, and retry, an invoke still running."""
    return aws.client("lambda", http=replace(aws.http, read_timeout=TIMEOUT + 30))


def _request_id(answer: dict[str, Any]) -> str:
    return str(answer.get("ResponseMetadata", {}).get("RequestId", "?"))
