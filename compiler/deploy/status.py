"""status: the stack's state, outputs, last events, and drift if asked. Everything user-facing goes through `say`."""

from __future__ import annotations

from datetime import UTC, datetime

from .aws import Aws
from .operations import Say, waiting_change_sets


def status(aws: Aws, name: str, *, drift: bool, events: int, say: Say) -> int:
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
