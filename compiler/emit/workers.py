"""Workers: how queue messages reach tasks. The two profiles differ here most (sqlglot-style: one entry
point, one generator per dispatch mode).

- autoscaled-service (standard): an ECS service that scales to zero on its queue. A queue-not-empty alarm
  sets the desired count by backlog (1 first), a queue-empty-for-5-minutes alarm sets it to the minimum (0),
  and CPU/memory tracking adds tasks between min and max but never removes them (scale-in belongs to the
  queue, so tracking cannot stop a task that is still draining messages).
- pipe (ultra): an EventBridge Pipe runs one Fargate (Spot) task per message, handing it the message body.
"""

from __future__ import annotations

from collections.abc import Callable

from troposphere import GetAtt, Ref, Sub, cloudwatch, pipes
from troposphere import applicationautoscaling as aas

from .. import contract
from ..naming import service_id
from ..plan import ServicePlan
from ..scaling import EMPTY_PERIODS, backlog_steps
from . import manifest
from .stack import Stack, role, statement
from .tasks import capacity, ecs_service, scalable_target, security_groups, tracking_policies


def _queue_metric(stack: Stack, worker: ServicePlan, metric: str, ident: str) -> cloudwatch.MetricDataQuery:
    assert worker.queue is not None
    return cloudwatch.MetricDataQuery(Id=ident, ReturnData=False, MetricStat=cloudwatch.MetricStat(
        Stat="Maximum", Period=60, Metric=cloudwatch.Metric(
            Namespace="AWS/SQS", MetricName=metric, Dimensions=[cloudwatch.MetricDimension(
                Name="QueueName", Value=GetAtt(stack.queues[worker.queue].queue, "QueueName"))])))


def autoscaled_service(stack: Stack, worker: ServicePlan) -> None:
    assert worker.queue is not None
    node = manifest.service(worker.name)
    ecs_service(stack, worker)
    target = scalable_target(stack, worker)
    scale_out = stack.add(aas.ScalingPolicy(
        service_id(worker, "ScaleOutPolicy"), PolicyName=f"{worker.name}-queue-backlog", PolicyType="StepScaling",
        ScalingTargetId=Ref(target), StepScalingPolicyConfiguration=aas.StepScalingPolicyConfiguration(
            AdjustmentType="ExactCapacity", Cooldown=60, MetricAggregationType="Maximum",
            StepAdjustments=[aas.StepAdjustment(MetricIntervalLowerBound=lower, ScalingAdjustment=count,
                                                **({"MetricIntervalUpperBound": upper} if upper else {}))
                             for lower, upper, count in backlog_steps(worker)])), node=node, role="scaling")
    scale_in = stack.add(aas.ScalingPolicy(
        service_id(worker, "ScaleInPolicy"), PolicyName=f"{worker.name}-queue-empty", PolicyType="StepScaling",
        ScalingTargetId=Ref(target), StepScalingPolicyConfiguration=aas.StepScalingPolicyConfiguration(
            AdjustmentType="ExactCapacity", Cooldown=60, MetricAggregationType="Maximum",
            StepAdjustments=[aas.StepAdjustment(MetricIntervalUpperBound=0,
                                                ScalingAdjustment=worker.scaling_min)])), node=node, role="scaling")
    # Missing data: SQS stops publishing for a queue idle for hours. For "not empty" that means no messages
    # (notBreaching); for "empty" it means empty (breaching), so an idle service stays at zero.
    stack.add(cloudwatch.Alarm(
        service_id(worker, "QueueNotEmptyAlarm"), AlarmDescription=f"{worker.queue} has messages: start {worker.name}",
        Namespace="AWS/SQS", MetricName="ApproximateNumberOfMessagesVisible",
        Dimensions=[cloudwatch.MetricDimension(Name="QueueName",
                                               Value=GetAtt(stack.queues[worker.queue].queue, "QueueName"))],
        Statistic="Maximum", Period=60, EvaluationPeriods=1, Threshold=0, ComparisonOperator="GreaterThanThreshold",
        TreatMissingData="notBreaching", AlarmActions=[Ref(scale_out)]), node=node, role="scaling")
    # Empty means nothing visible and nothing in flight: a task still processing is never stopped.
    stack.add(cloudwatch.Alarm(
        service_id(worker, "QueueEmptyAlarm"),
        AlarmDescription=f"{worker.queue} empty for {EMPTY_PERIODS} minutes: scale {worker.name} to "
                         f"{worker.scaling_min}",
        Metrics=[_queue_metric(stack, worker, "ApproximateNumberOfMessagesVisible", "visible"),
                 _queue_metric(stack, worker, "ApproximateNumberOfMessagesNotVisible", "inflight"),
                 cloudwatch.MetricDataQuery(Id="backlog", Expression="visible + inflight", ReturnData=True,
                                            Label="messages visible or in flight")],
        EvaluationPeriods=EMPTY_PERIODS, DatapointsToAlarm=EMPTY_PERIODS, Threshold=0,
        ComparisonOperator="LessThanOrEqualToThreshold", TreatMissingData="breaching",
        AlarmActions=[Ref(scale_in)]), node=node, role="scaling")
    tracking_policies(stack, worker, target, scale_in=False)


def pipe(stack: Stack, worker: ServicePlan) -> None:
    """SQS -> EventBridge Pipe -> ecs:RunTask, one message per task. Pipes deletes the message once RunTask
    succeeds, not when the task ends: the runtime's lease and the sweeper make an interrupted task lose
    nothing."""
    assert worker.queue is not None and stack.network is not None and stack.cluster is not None
    assert stack.capacity_providers is not None
    queue = stack.queues[worker.queue].queue
    task_definition = stack.task_definitions[worker.name]
    node = manifest.service(worker.name)
    pipe_role = role(stack, service_id(worker, "PipeRole"), node, "pipes.amazonaws.com", [
        statement("ReadQueue", ["sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes"],
                  [GetAtt(queue, "Arn")]),
        # Any revision of the family: an update replaces the task definition and the role's policy before the
        # Pipe points at the new revision; naming one revision would refuse RunTask in between.
        statement("RunTask", ["ecs:RunTask"], [Sub(f"arn:${{AWS::Partition}}:ecs:${{AWS::Region}}:${{AWS::AccountId}}:"
                                                   f"task-definition/{stack.name(worker.name)}:*")],
                  Condition={"ArnEquals": {"ecs:cluster": GetAtt(stack.cluster, "Arn")}}),
        statement("PassTaskRoles", ["iam:PassRole"], [GetAtt(r, "Arn") for r in stack.task_roles[worker.name]],
                  Condition={"StringEquals": {"iam:PassedToService": "ecs-tasks.amazonaws.com"}}),
    ])
    stack.add(pipes.Pipe(
        service_id(worker, "Pipe"), RoleArn=GetAtt(pipe_role, "Arn"), DesiredState="RUNNING",
        Description=f"{worker.queue} -> one {worker.name} task per message",
        Source=GetAtt(queue, "Arn"),
        SourceParameters=pipes.PipeSourceParameters(
            SqsQueueParameters=pipes.PipeSourceSqsQueueParameters(BatchSize=1)),
        Target=GetAtt(stack.cluster, "Arn"),
        TargetParameters=pipes.PipeTargetParameters(EcsTaskParameters=pipes.PipeTargetEcsTaskParameters(
            TaskDefinitionArn=Ref(task_definition), TaskCount=1,
            CapacityProviderStrategy=[pipes.CapacityProviderStrategyItem(
                CapacityProvider=capacity(stack, worker), Weight=1)],
            NetworkConfiguration=pipes.NetworkConfiguration(AwsvpcConfiguration=pipes.AwsVpcConfiguration(
                Subnets=stack.network.task_subnets, SecurityGroups=security_groups(stack, worker),
                AssignPublicIp="ENABLED" if stack.plan.decisions.network.tasks_public else "DISABLED")),
            Overrides=pipes.EcsTaskOverride(ContainerOverrides=[pipes.EcsContainerOverride(
                Name=worker.name, Environment=[pipes.EcsEnvironmentVariable(
                    Name=contract.EXECUTION_ID, Value="$.body")])]))),
        DependsOn=[stack.capacity_providers]), node=node, role="dispatch")


GENERATORS: dict[str, Callable[[Stack, ServicePlan], None]] = {
    "autoscaled-service": autoscaled_service,
    "pipe": pipe,
}


def emit(stack: Stack) -> None:
    generate = GENERATORS[stack.plan.decisions.worker_dispatch]
    for worker in stack.plan.workers:
        generate(stack, worker)


