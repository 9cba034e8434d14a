"""fbc destroy: delete a stack without stopping half-way, and say what the delete leaves behind.

Before CloudFormation is asked: a prod stack asks for its name, prod as the stack says (its environment tag, or
termination protection on), whatever --env says; termination protection is turned off only when asked
(--disable-termination-protection), after every other check; a database with deletion protection is refused
(the delete would fail after everything else was gone); Pipes are stopped and their standalone tasks drained,
which CloudFormation does not own but its deletes wait for.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from botocore.exceptions import ClientError

from .aws import Aws, DeployError, StackInfo, error_code, stack_tags
from .operations import Confirm, Say, _failures, _last_event_time, busy, follow

TASK_STOP_WAIT = 180  # seconds: Fargate's longest stop timeout (120 s) and the time to report it


def destroy(aws: Aws, name: str, *, prod: bool, assume_yes: bool, typed_name: str | None, interactive: bool,
            say: Say, confirm: Confirm, prompt: Callable[[str], str], disable_protection: bool = False) -> int:
    """`prod`: --env says prod (the stack may say so too: _guarded)."""
    cf = aws.cloudformation
    stack = cf.describe(name)
    if stack is None:
        say(f"{name}: no such stack; nothing to destroy")
        return 0
    if busy(stack):
        raise DeployError(f"{name} is busy ({stack.status}); wait for it to finish and destroy again")
    if stack.termination_protection and not disable_protection:
        raise DeployError(f"{name} has termination protection on; destroy turns it off only when asked: "
                          f"--disable-termination-protection")
    guarded = _guarded(aws, stack, prod)
    if guarded:
        # Deleting production asks for the stack's name, as GitHub does for a repository.
        answer = typed_name if typed_name is not None else (prompt(f"Type {name} to delete it") if interactive
                                                              else None)
        if answer != name:
            raise DeployError(f"{name} {guarded}: type its name to delete it"
                              + ("" if interactive else " (--confirm-stack NAME with --yes in CI)"))
        if not interactive and not assume_yes:
            raise DeployError("deleting needs --yes when not on a terminal")
    elif not assume_yes:
        if not interactive:
            raise DeployError(f"deleting {name} needs confirmation: pass --yes")
        if not confirm(f"Delete {name} and everything in it?"):
            say("not deleted")
            return 1
    deployed = cf.template(stack.stack_id)
    physical = {r.logical_id: r.physical_id for r in cf.resources(stack.stack_id)}
    protected = _protected_databases(aws, deployed, physical)
    if protected:
        # CloudFormation would delete everything else first and then fail on the database, leaving the stack
        # half gone in DELETE_FAILED: refuse before anything is touched. Turning protection off stays explicit.
        raise DeployError(f"{name}: database {', '.join(protected)} has deletion protection, so the delete would "
                          f"stop half-way; turn it off first (aws rds modify-db-instance --db-instance-identifier "
                          f"{protected[0]} --no-deletion-protection --apply-immediately), then destroy again: "
                          f"RDS still leaves a final snapshot")
    if stack.termination_protection:  # asked for (--disable-termination-protection), or refused above
        cf.protect(stack.stack_id, False)
        say(f"{name}: termination protection off (--disable-termination-protection)")
    _quiesce(aws, deployed, physical, say)
    kept = _kept_after_delete(deployed)
    since, seen = _last_event_time(cf, stack.stack_id)
    cf.delete(stack.stack_id)
    final = follow(aws, stack.stack_id, since, len(cf.resources(stack.stack_id)), say, seen)
    if final is not None and final.status != "DELETE_COMPLETE":
        say(f"{name}: {final.status} {final.reason}")
        for failure in _failures(cf, stack.stack_id, since):
            say(f"  failed: {failure}")
        return 1
    say(f"{name}: deleted")
    for line in kept:
        say(f"  kept: {line}")
    if any(r.get("Type") == "AWS::SQS::Queue" and "QueueName" in r.get("Properties", {})
           for r in deployed.get("Resources", {}).values()):
        say("  SQS refuses a deleted queue's name for 60 s (QueueDeletedRecently): wait a minute before an apply "
            "recreates the stack")
    return 0


def _guarded(aws: Aws, stack: StackInfo, prod: bool) -> str:
    """Why deleting `stack` asks for its name ("" when it does not): what the stack says of itself, its
    environment tag or its termination protection, whatever --env says (--stack-name can name any stack);
    --env prod asks too."""
    if stack_tags(aws, stack.stack_id).get("environment") == "prod":
        return "is a prod stack (its environment tag)"
    if stack.termination_protection:
        return "has termination protection on"
    return "is a prod stack" if prod else ""


def _protected_databases(aws: Aws, template: dict[str, Any], physical: dict[str, str]) -> list[str]:
    """RDS instances of the stack that refuse deletion (the template says so and the instance agrees)."""
    found = []
    for logical_id, resource in sorted(template.get("Resources", {}).items()):
        if resource.get("Type") != "AWS::RDS::DBInstance" or not physical.get(logical_id):
            continue
        if resource.get("Properties", {}).get("DeletionProtection") is not True:
            continue
        try:
            live = aws.call(aws.client("rds").describe_db_instances, DBInstanceIdentifier=physical[logical_id])
            protected = bool(live["DBInstances"][0].get("DeletionProtection"))
        except ClientError:
            protected = True  # cannot tell: trust the template
        if protected:
            found.append(physical[logical_id])
    return found


def _quiesce(aws: Aws, template: dict[str, Any], physical: dict[str, str], say: Say) -> None:
    """Stop what CloudFormation does not own but its resources' deletes wait for: a Pipe's standalone tasks
    keep the cluster, its capacity providers and the task security group in use (ClusterContainsTasks,
    "capacity provider is in use", DependencyViolation), and a running Pipe starts more."""
    resources = template.get("Resources", {})
    for logical_id in sorted(k for k, r in resources.items() if r.get("Type") == "AWS::Pipes::Pipe"):
        if physical.get(logical_id):
            try:
                aws.call(aws.client("pipes").stop_pipe, Name=physical[logical_id])
                say(f"stopped pipe {physical[logical_id]}: no new tasks")
            except ClientError as exc:
                say(f"could not stop pipe {physical[logical_id]} ({error_code(exc)}); deleting anyway")
    for logical_id in sorted(k for k, r in resources.items() if r.get("Type") == "AWS::ECS::Cluster"):
        cluster = physical.get(logical_id)
        if not cluster:
            continue
        ecs = aws.client("ecs")
        tasks = [arn for page in aws.pages(ecs.list_tasks, token="nextToken", cluster=cluster, desiredStatus="RUNNING")
                 for arn in page.get("taskArns", [])]
        if not tasks:
            continue
        say(f"stopping {len(tasks)} running task(s) in {cluster} so the cluster can be deleted")
        for task in tasks:
            aws.call(ecs.stop_task, cluster=cluster, task=task, reason="fbc destroy")
        # A task gets its stop timeout (120 s on Spot) to finish its step and release its execution.
        deadline = aws.clock.monotonic() + TASK_STOP_WAIT
        while aws.clock.monotonic() < deadline:
            described = [t for start in range(0, len(tasks), 100) for t in aws.call(
                ecs.describe_tasks, cluster=cluster, tasks=tasks[start:start + 100]).get("tasks", [])]
            if all(t.get("lastStatus") == "STOPPED" for t in described):
                break
            aws.clock.poll()


def _kept_after_delete(template: dict[str, Any]) -> list[str]:
    """What a stack delete leaves behind, from the resources' DeletionPolicy (log groups and buckets kept,
    databases snapshotted), so nobody is surprised by a bill or looks for data that is gone."""
    kept = []
    for logical_id, resource in sorted(template.get("Resources", {}).items()):
        policy = resource.get("DeletionPolicy")
        if policy == "Retain":
            kept.append(f"{logical_id} ({resource.get('Type', '')}, retained)")
        elif policy == "Snapshot":
            kept.append(f"{logical_id} ({resource.get('Type', '')}): a final snapshot")
    return kept
