"""The scheduler: one Lambda running the runtime's scheduler handler, one EventBridge Scheduler schedule
per spec schedule, and a sweeper schedule that re-enqueues executions whose lease expired or that were
recorded but never sent. Failed invocations go to a dead-letter queue after the schedule's retries."""

from __future__ import annotations

import json
from typing import Any

from troposphere import GetAtt, Ref, awslambda, scheduler

from .. import contract
from ..naming import schedule_id, scheduler_id
from ..plan import ServicePlan
from . import manifest
from .functions import _read_secrets, function, join_vpc
from .manifest import SCHEDULER
from .monitoring import alarm
from .queues import new_queue
from .stack import Stack, role, statement

TIMEOUT = 300  # seconds: a sweep may re-enqueue many executions
MEMORY = 512
# Lambda's own retries of a failed asynchronous invocation (its default, stated). Each schedule event is
# idempotent (one execution per schedule and scheduled time), so a retry never starts a workflow twice.
ASYNC_RETRIES = 2


def _target(stack: Stack, fn: Any, invoker: Any, dead_letter: Any, payload: dict[str, Any],
            max_attempts: int, max_age: int) -> scheduler.Target:
    return scheduler.Target(
        Arn=GetAtt(fn, "Arn"), RoleArn=GetAtt(invoker, "Arn"), Input=json.dumps(payload, sort_keys=True),
        RetryPolicy=scheduler.RetryPolicy(MaximumRetryAttempts=max_attempts, MaximumEventAgeInSeconds=max_age),
        DeadLetterConfig=scheduler.DeadLetterConfig(Arn=GetAtt(dead_letter, "Arn")))


def emit(stack: Stack) -> None:
    plan = stack.plan
    if plan.runtime_queue is None:  # validation guarantees no schedules then
        return
    assert stack.database is not None and stack.network is not None
    queue = stack.queues[plan.runtime_queue].queue
    image = ServicePlan(
        name="scheduler", id="Scheduler", kind="worker", role=None, image=plan.runtime_image,
        image_parameter="RuntimeImage", command=None, cpu=256, memory=MEMORY, env=(), secrets=(),
        stop_timeout=30, scaling_min=0, scaling_max=1, target_cpu=70, target_memory=80)
    env: dict[str, Any] = dict(plan.contract_environment("scheduler", None, lambda _: Ref(queue)))
    env.update(dict(stack.database.lambda_env))
    env.update(dict(plan.runtime_env))
    for name, reference in plan.runtime_secrets:
        env[f"{contract.SECRET_REF_PREFIX}{name}"] = reference
    # One queue for every way an invocation can fail: Scheduler could not deliver it (the schedule's dead-letter
    # config), or the handler raised on each of Lambda's asynchronous attempts (the on-failure destination).
    # Either way the event lands here and its alarm fires; without the destination Lambda drops it silently.
    dead_letter = new_queue(stack, scheduler_id("DeadLetterQueue"), SCHEDULER, "dead-letter",
                            QueueName=stack.name("scheduler-dlq"), MessageRetentionPeriod=14 * 86400)
    statements = [statement("SendExecutions", ["sqs:SendMessage", "sqs:GetQueueAttributes"],
                            [GetAtt(queue, "Arn")]),
                  statement("SendFailures", ["sqs:SendMessage"], [GetAtt(dead_letter, "Arn")]),
                  *stack.database.read_statements,
                  *_read_secrets([ref for _, ref in plan.runtime_secrets])]
    vpc = join_vpc(stack, SCHEDULER, scheduler_id, "Scheduler", statements)
    fn = function(stack, image, statements, node=SCHEDULER, name=scheduler_id, timeout=TIMEOUT,
                  handler=contract.LAMBDA_HANDLERS["scheduler"], extra_env=env, vpc=vpc)
    stack.add(awslambda.EventInvokeConfig(
        scheduler_id("InvokeConfig"), FunctionName=Ref(fn), Qualifier="$LATEST", MaximumRetryAttempts=ASYNC_RETRIES,
        MaximumEventAgeInSeconds=3600, DestinationConfig=awslambda.DestinationConfig(
            OnFailure=awslambda.OnFailure(Destination=GetAtt(dead_letter, "Arn")))), node=SCHEDULER, role="function")

    invoker = role(stack, scheduler_id("Role"), SCHEDULER, "scheduler.amazonaws.com", [
        statement("InvokeScheduler", ["lambda:InvokeFunction"], [GetAtt(fn, "Arn")]),
        statement("DeadLetters", ["sqs:SendMessage"], [GetAtt(dead_letter, "Arn")]),
    ])
    for schedule in plan.schedules:
        window = (scheduler.FlexibleTimeWindow(Mode="FLEXIBLE",
                                               MaximumWindowInMinutes=schedule.flexible_window_minutes)
                  if schedule.flexible_window_minutes else scheduler.FlexibleTimeWindow(Mode="OFF"))
        stack.add(scheduler.Schedule(
            schedule_id(schedule), Description=schedule.description or f"Starts workflow {schedule.workflow}",
            ScheduleExpression=schedule.expression, ScheduleExpressionTimezone=schedule.timezone,
            FlexibleTimeWindow=window, State="ENABLED" if schedule.enabled else "DISABLED",
            Target=_target(stack, fn, invoker, dead_letter, schedule.event(),
                           schedule.max_attempts, schedule.max_age)),
            node=manifest.schedule(schedule.name), role="schedule")
    stack.add(scheduler.Schedule(
        "SweeperSchedule", Description="Re-enqueues executions whose lease expired or that were never sent",
        ScheduleExpression=contract.SWEEP_RATE, FlexibleTimeWindow=scheduler.FlexibleTimeWindow(Mode="OFF"),
        State="ENABLED", Target=_target(stack, fn, invoker, dead_letter, {"type": contract.SWEEP_EVENT},
                                        max_attempts=0, max_age=300)), node=SCHEDULER, role="schedule")
    alarm(stack, scheduler_id("DeadLetterAlarm"), SCHEDULER,
          "A scheduler invocation failed: not delivered, or the handler failed all its attempts (the message holds "
          "the event and the error)",
          Namespace="AWS/SQS", MetricName="ApproximateNumberOfMessagesVisible",
          dimensions={"QueueName": GetAtt(dead_letter, "QueueName")},
          Statistic="Maximum", Period=300, EvaluationPeriods=1, Threshold=0, ComparisonOperator="GreaterThanThreshold")
    if plan.decisions.all_alarms:
        alarm(stack, scheduler_id("ErrorsAlarm"), SCHEDULER, "The scheduler function fails",
              Namespace="AWS/Lambda", MetricName="Errors",
              dimensions={"FunctionName": Ref(fn)},
              Statistic="Sum", Period=300, EvaluationPeriods=1, Threshold=0, ComparisonOperator="GreaterThanThreshold")
