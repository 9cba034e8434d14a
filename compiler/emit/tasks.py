"""ECS: the cluster, and for every service that runs as a Fargate task its log group, roles, image
parameter and task definition. Web services and workers then differ only in how tasks are started
(web.py, workers.py); the runtime's environment contract is assembled here for ECS and Lambda alike."""

from __future__ import annotations

import re
from typing import Any

from troposphere import GetAtt, Join, Ref, Sub, ec2, ecs
from troposphere import applicationautoscaling as aas

from .. import contract
from ..naming import ServiceSuffix, service_id
from ..plan import ServicePlan
from ..scalars import ECR_IMAGE
from . import manifest
from .manifest import STACK
from .stack import Stack, arn, log_group, role, skip_checks, statement


def runs_on_ecs(stack: Stack, service: ServicePlan) -> bool:
    return service.kind == "worker" or stack.plan.decisions.web_on_ecs


def image_parameter(stack: Stack, service: ServicePlan) -> Ref:
    """One parameter per image, so CI deploys a new tag without editing the spec. An ECR image is pinned to
    its repository: the roles may pull from it and nothing else."""
    props: dict[str, Any] = {"Type": "String", "Default": service.image,
                             "Description": f"Container image of {'the runtime' if service.role else service.name}."}
    match = ECR_IMAGE.match(service.image)
    if match:
        repository = re.escape(service.image[: match.start("ref")] if match.group("ref") else service.image)
        props["AllowedPattern"] = f"^{repository}(:[A-Za-z0-9_][A-Za-z0-9_.-]{{0,127}}|@sha256:[a-f0-9]{{64}})$"
        props["ConstraintDescription"] = f"an image of the repository {match.group('repository')}"
    return Ref(stack.parameter(service.image_parameter, **props))


def image_pull_statements(service: ServicePlan) -> list[dict[str, Any]]:
    match = ECR_IMAGE.match(service.image)
    if match is None:
        return []  # a public registry needs no AWS permission
    repository = Sub(f"arn:${{AWS::Partition}}:ecr:{match.group('region')}:{match.group('account')}:repository/"
                     f"{match.group('repository')}")
    return [
        # GetAuthorizationToken has no resource-level permissions: AWS offers nothing narrower than "*".
        statement("EcrLogin", ["ecr:GetAuthorizationToken"], ["*"]),
        statement("PullImage", ["ecr:BatchCheckLayerAvailability", "ecr:BatchGetImage",
                                "ecr:GetDownloadUrlForLayer"], [repository]),
    ]


def secret_reference(reference: str) -> tuple[Any, Any, str]:
    """(ValueFrom for ECS, the ARN IAM must allow, the action) for a spec secret reference."""
    if reference.startswith("/"):
        parameter = arn("ssm", f"parameter{reference}")
        return parameter, parameter, "ssm:GetParameters"
    if ":ssm:" in reference:
        return reference, reference, "ssm:GetParameters"
    # Secrets Manager: ARN, optionally followed by :json-key:version-stage:version-id
    return reference, ":".join(reference.split(":")[:7]), "secretsmanager:GetSecretValue"


def secret_statements(sid: str, references: list[str]) -> list[dict[str, Any]]:
    by_action: dict[str, list[Any]] = {}
    for reference in references:
        _, resource, action = secret_reference(reference)
        by_action.setdefault(action, []).append(resource)
    return [statement(f"{sid}{i}", [action], resources)
            for i, (action, resources) in enumerate(sorted(by_action.items()))]


def role_environment(stack: Stack, service: ServicePlan, *, on_lambda: bool) -> list[tuple[str, Any]]:
    """The contract's variables for one service, then the user's. Runtime roles get the database too."""
    plan = stack.plan
    env = plan.contract_environment(service.role, service, lambda queue: Ref(stack.queues[queue].queue))
    if service.role is not None:
        assert stack.database is not None
        env += stack.database.lambda_env if on_lambda else stack.database.container_env
        env += list(plan.runtime_env)
    return env + list(service.env)


def queue_statements(stack: Stack, service: ServicePlan) -> list[dict[str, Any]]:
    """What the runtime role does with its queue, and nothing more."""
    plan = stack.plan
    if service.kind == "worker" and service.queue is not None:
        actions = ["sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:ChangeMessageVisibility",
                   "sqs:GetQueueAttributes", "sqs:SendMessage"]  # SendMessage: re-enqueue on Spot interruption
        return [statement("ConsumeQueue", actions, [GetAtt(stack.queues[service.queue].queue, "Arn")])]
    if service.role == "api" and plan.runtime_queue is not None:
        return [statement("SendExecutions", ["sqs:SendMessage", "sqs:GetQueueAttributes"],
                          [GetAtt(stack.queues[plan.runtime_queue].queue, "Arn")])]
    return []


def cluster(stack: Stack) -> None:
    if not any(runs_on_ecs(stack, s) for s in stack.plan.services):
        return
    decisions = stack.plan.decisions
    insights = "enabled" if decisions.container_insights else "disabled"
    stack.cluster = stack.add(ecs.Cluster("Cluster", ClusterSettings=[
        ecs.ClusterSetting(Name="containerInsights", Value=insights)]), node=STACK, role="cluster")
    if insights == "disabled":
        skip_checks(stack.cluster, ("CKV_AWS_65", "Container Insights off: it bills custom metrics per task and "
                                                  "service, which this profile's zero idle cost rules out; task "
                                                  "logs and the queues' metrics remain."))
    # Whatever names a capacity provider depends on this association (ecs_service, workers.pipe): on create
    # it must exist first, on delete ECS refuses to remove a provider still in use by a service.
    stack.capacity_providers = "ClusterCapacityProviders"
    stack.add(ecs.ClusterCapacityProviderAssociations(
        stack.capacity_providers, Cluster=Ref(stack.cluster), CapacityProviders=["FARGATE", "FARGATE_SPOT"],
        DefaultCapacityProviderStrategy=[ecs.CapacityProviderStrategy(
            CapacityProvider=decisions.worker_capacity, Weight=1)]), node=STACK, role="cluster")
    assert stack.network is not None
    stack.task_security_group = stack.add(ec2.SecurityGroup(
        "TaskSecurityGroup", GroupDescription="Fargate tasks: reach AWS APIs and the services workflows call",
        VpcId=stack.network.vpc_id,
        SecurityGroupEgress=[ec2.SecurityGroupRule(IpProtocol="-1", CidrIp="0.0.0.0/0",
                                                   Description="AWS APIs and external services")]),
        node=STACK, role="cluster")
    for service in stack.plan.services:
        if runs_on_ecs(stack, service):
            task_definition(stack, service)


# Fargate Spot sends SIGTERM two minutes before it reclaims a task, and Fargate allows at most 120 s between
# SIGTERM and SIGKILL: on Spot the runtime gets all of it to finish its step and release the execution.
SPOT_STOP_TIMEOUT = 120


def capacity(stack: Stack, service: ServicePlan) -> str:
    """The capacity provider a service's tasks run on: workers follow the profile, web services stay on
    on-demand Fargate (a reclaimed web task drops requests)."""
    return stack.plan.decisions.capacity(service.kind)


def stop_timeout(stack: Stack, service: ServicePlan) -> int:
    return SPOT_STOP_TIMEOUT if capacity(stack, service) == "FARGATE_SPOT" else service.stop_timeout


def task_definition(stack: Stack, service: ServicePlan) -> None:
    node = manifest.service(service.name)
    image = image_parameter(stack, service)
    logs_group = log_group(stack, service_id(service, "LogGroup"), node)
    assert stack.database is not None
    secrets = [(name, secret_reference(ref)[0]) for name, ref in service.secrets]
    inject = secret_statements("ReadSecrets", [ref for _, ref in service.secrets])
    if service.role is not None:
        secrets += stack.database.container_secrets
        inject += stack.database.inject_statements
    execution = role(stack, service_id(service, "ExecutionRole"), node, "ecs-tasks.amazonaws.com", [
        *image_pull_statements(service),
        statement("WriteLogs", ["logs:CreateLogStream", "logs:PutLogEvents"], [GetAtt(logs_group, "Arn")]),
        *inject,
    ])
    roles = [execution]
    task_role_props: dict[str, Any] = {}
    runtime_statements = queue_statements(stack, service)
    if service.role is not None:
        runtime_statements += stack.database.container_read_statements
    if service.kind == "worker" and stack.plan.worker_mode == "poll":
        # Scale-in never stops a running execution: the worker protects its own task while it holds one
        # (ECS agent's task-protection endpoint, which calls these with the task role). A worker with its own
        # image may do the same.
        runtime_statements.append(statement(
            "ProtectOwnTask", ["ecs:GetTaskProtection", "ecs:UpdateTaskProtection"],
            [Sub("arn:${AWS::Partition}:ecs:${AWS::Region}:${AWS::AccountId}:task/${Cluster}/*")]))
    if runtime_statements:
        task_role = role(stack, service_id(service, "TaskRole"), node, "ecs-tasks.amazonaws.com", runtime_statements)
        task_role_props["TaskRoleArn"] = GetAtt(task_role, "Arn")
        roles.append(task_role)
    command = list(service.command) if service.command else (
        contract.COMMANDS[service.role] if service.role else None)
    container: dict[str, Any] = {
        "Name": service.name, "Image": image, "Essential": True,
        "Environment": [ecs.Environment(Name=k, Value=v) for k, v in role_environment(stack, service, on_lambda=False)],
        "Secrets": [ecs.Secret(Name=k, ValueFrom=v) for k, v in secrets],
        "StopTimeout": stop_timeout(stack, service),
        "LogConfiguration": ecs.LogConfiguration(LogDriver="awslogs", Options={
            "awslogs-group": Ref(logs_group), "awslogs-region": Ref("AWS::Region"),
            "awslogs-stream-prefix": service.name}),
    }
    if command:
        container["Command"] = command
    if service.port is not None:
        container["PortMappings"] = [ecs.PortMapping(ContainerPort=service.port, Protocol="tcp")]
    if not secrets:
        del container["Secrets"]
    stack.task_definitions[service.name] = stack.add(ecs.TaskDefinition(
        service_id(service, "TaskDefinition"), Family=stack.name(service.name), Cpu=str(service.cpu),
        Memory=str(service.memory), NetworkMode="awsvpc", RequiresCompatibilities=["FARGATE"],
        RuntimePlatform=ecs.RuntimePlatform(OperatingSystemFamily="LINUX", CpuArchitecture="X86_64"),
        ExecutionRoleArn=GetAtt(execution, "Arn"), ContainerDefinitions=[ecs.ContainerDefinition(**container)],
        **task_role_props), node=node, role="task")
    stack.task_roles[service.name] = roles


def security_groups(stack: Stack, service: ServicePlan) -> list[Any]:
    groups = [Ref(stack.task_security_group)]
    if service.role is not None and stack.database is not None and stack.database.client_security_group:
        groups.append(stack.database.client_security_group)
    return groups


def ecs_service(stack: Stack, service: ServicePlan, *, depends_on: tuple[str, ...] = (), **extra: Any) -> Any:
    """An ECS service for `service`, deployed with a circuit breaker that rolls back failed deployments.

    No DesiredCount: its scalable target (every service here has one) owns the count. With DesiredCount in the
    template, every stack update that touches the service resets the count to it, undoing autoscaling in the
    middle of a deploy; without it ECS starts a new service at 1 and Application Auto Scaling moves it into
    [min, max] when the target registers."""
    assert stack.network is not None and stack.capacity_providers is not None
    resource = stack.add(ecs.Service(
        service_id(service, "Service"), Cluster=Ref(stack.cluster),
        TaskDefinition=Ref(stack.task_definitions[service.name]),
        CapacityProviderStrategy=[ecs.CapacityProviderStrategyItem(CapacityProvider=capacity(stack, service),
                                                                   Weight=1)],
        NetworkConfiguration=ecs.NetworkConfiguration(AwsvpcConfiguration=ecs.AwsvpcConfiguration(
            Subnets=stack.network.task_subnets, SecurityGroups=security_groups(stack, service),
            AssignPublicIp="ENABLED" if stack.plan.decisions.network.tasks_public else "DISABLED")),
        DeploymentConfiguration=ecs.DeploymentConfiguration(
            DeploymentCircuitBreaker=ecs.DeploymentCircuitBreaker(Enable=True, Rollback=True),
            MaximumPercent=200, MinimumHealthyPercent=100),
        PropagateTags="SERVICE", EnableECSManagedTags=True, DependsOn=[stack.capacity_providers, *depends_on],
        **extra), node=manifest.service(service.name), role="compute")
    stack.ecs_services[service.name] = resource
    return resource


def scalable_target(stack: Stack, service: ServicePlan) -> Any:
    return stack.add(aas.ScalableTarget(
        service_id(service, "ScalableTarget"), MinCapacity=service.scaling_min, MaxCapacity=service.scaling_max,
        ResourceId=Join("/", ["service", Ref(stack.cluster), GetAtt(stack.ecs_services[service.name], "Name")]),
        ScalableDimension="ecs:service:DesiredCount", ServiceNamespace="ecs"),
        node=manifest.service(service.name), role="scaling")


def tracking_policies(stack: Stack, service: ServicePlan, target: Any, *, scale_in: bool) -> None:
    policies: tuple[tuple[str, int, ServiceSuffix], ...] = (
        ("CPU", service.target_cpu, "CPUScalingPolicy"), ("Memory", service.target_memory, "MemoryScalingPolicy"))
    for metric, value, suffix in policies:
        stack.add(aas.ScalingPolicy(
            service_id(service, suffix), PolicyName=f"{service.name}-{metric.lower()}-tracking",
            PolicyType="TargetTrackingScaling", ScalingTargetId=Ref(target),
            TargetTrackingScalingPolicyConfiguration=aas.TargetTrackingScalingPolicyConfiguration(
                TargetValue=float(value), DisableScaleIn=not scale_in, ScaleInCooldown=120, ScaleOutCooldown=60,
                PredefinedMetricSpecification=aas.PredefinedMetricSpecification(
                    PredefinedMetricType=f"ECSServiceAverage{metric}Utilization"))),
            node=manifest.service(service.name), role="scaling")
