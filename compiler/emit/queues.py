"""SQS queues with server-side encryption, their dead-letter queues and redrive, and their alarms."""

from __future__ import annotations

from typing import Any

from troposphere import GetAtt, Ref, sqs

from ..naming import queue_id
from . import manifest
from .manifest import Node, Role
from .monitoring import alarm
from .stack import QueueRefs, Stack, skip_checks

SSE_SQS = ("CKV_AWS_27", "Encrypted at rest with SSE-SQS (SqsManagedSseEnabled, SQS-owned keys, no cost); a "
                        "customer key adds USD 1/month and a KMS call per request and stops CloudWatch and "
                        "EventBridge from sending to the queue without extra key grants.")
# A queue is replaced only when its name or FIFO setting changes: the old one is kept with the messages it
# still holds, to drain or redrive by hand. On stack delete the queues go with the application, and so do the
# messages in them (fbc destroy says so before it deletes).
LIFECYCLE = {"DeletionPolicy": "Delete", "UpdateReplacePolicy": "Retain"}


def new_queue(stack: Stack, logical_id: str, node: Node, role: Role, **props: Any) -> Any:
    resource = stack.add(sqs.Queue(logical_id, SqsManagedSseEnabled=True, **LIFECYCLE, **props), node=node, role=role)
    skip_checks(resource, SSE_SQS)
    return resource


def emit(stack: Stack) -> None:
    full = stack.plan.decisions.all_alarms
    for q in stack.plan.queues:
        node = manifest.queue(q.name)
        fifo: dict[str, Any] = {"FifoQueue": True} if q.fifo else {}
        dead_letter = new_queue(stack, queue_id(q, "DeadLetterQueue"), node, "dead-letter",
                                QueueName=q.dead_letter_physical_name, MessageRetentionPeriod=q.dead_letter_retention,
                                **fifo)
        if q.fifo and q.content_based_deduplication:
            fifo["ContentBasedDeduplication"] = True
        main = new_queue(
            stack, queue_id(q, "Queue"), node, "queue", QueueName=q.physical_name,
            VisibilityTimeout=q.visibility_timeout, MessageRetentionPeriod=q.retention, DelaySeconds=q.delay,
            ReceiveMessageWaitTimeSeconds=q.receive_wait_time, MaximumMessageSize=q.max_message_size,
            RedrivePolicy=sqs.RedrivePolicy(deadLetterTargetArn=GetAtt(dead_letter, "Arn"),
                                            maxReceiveCount=q.max_receive_count),
            **fifo)
        stack.queues[q.name] = QueueRefs(queue=main, dead_letter=dead_letter)
        # Anything in the dead-letter queue failed maxReceiveCount times: tell someone, and say what it means.
        # With a Pipe a message is deleted once RunTask succeeds, so one that lands here never started a task
        # (RunTask throttled, Fargate quota, no Spot capacity); its execution is still recorded, and the sweeper
        # sends it again, so the alarm reports a delay, not a loss.
        meaning = (" (RunTask failed for it each time: throttling, the Fargate vCPU quota or no Spot capacity; "
                   "the sweeper still runs its execution, so look at the Pipe's and ECS's limits)"
                   if stack.plan.decisions.worker_dispatch == "pipe" else "")
        alarm(stack, queue_id(q, "DeadLetterAlarm"), node,
              f"Messages of {q.name} reached its dead-letter queue{meaning}",
              Namespace="AWS/SQS", MetricName="ApproximateNumberOfMessagesVisible",
              dimensions={"QueueName": GetAtt(dead_letter, "QueueName")},
              Statistic="Maximum", Period=300, EvaluationPeriods=1, Threshold=0,
              ComparisonOperator="GreaterThanThreshold")
        piped = any(w.queue == q.name for w in stack.plan.workers) and stack.plan.decisions.worker_dispatch == "pipe"
        if full or piped:
            # A message older than twice its visibility timeout has waited through at least one failed
            # attempt or finds no worker: the queue is falling behind. With a Pipe it is the only sign that
            # nothing consumes at all (Pipes stops a pipe whose target keeps failing, and then no message
            # reaches the dead-letter queue), so ultra keeps this one alarm per queue within the free ten.
            threshold = max(2 * q.visibility_timeout, 600)
            alarm(stack, queue_id(q, "AgeAlarm"), node, f"The oldest message of {q.name} is older than {threshold}s",
                  Namespace="AWS/SQS", MetricName="ApproximateAgeOfOldestMessage",
                  dimensions={"QueueName": GetAtt(main, "QueueName")},
                  Statistic="Maximum", Period=300, EvaluationPeriods=2, Threshold=threshold,
                  ComparisonOperator="GreaterThanThreshold")
        stack.output(queue_id(q, "QueueUrl"), Ref(main), f"URL of the {q.name} queue.")
