"""Logical IDs and the stack name: stable, derived from names, and a compatibility contract (SAM treats its
scheme so).

`workflow-requests` -> `WorkflowRequests`; each kind of spec entry appends fixed suffixes, and stack-wide
resources have fixed IDs. Changing either replaces live resources, so tests pin both: every ID an emitter
writes must be listed here, and validation rejects specs whose names would collide.
"""

from __future__ import annotations

# Suffixes per kind of spec entry (resources, parameters and outputs share them).
KIND_SUFFIXES: dict[str, tuple[str, ...]] = {
    "services": (
        "Service", "TaskDefinition", "TaskRole", "ExecutionRole", "LogGroup", "Image", "ServiceUrl",
        "TargetGroup", "ListenerRule", "IngressFromLoadBalancer", "EgressFromLoadBalancer",
        "ScalableTarget", "CPUScalingPolicy", "MemoryScalingPolicy", "ScaleOutPolicy", "ScaleInPolicy",
        "QueueNotEmptyAlarm", "QueueEmptyAlarm", "Pipe", "PipeRole",
        "Function", "FunctionRole", "FunctionUrl", "FunctionUrlPermission", "FunctionInvokePermission",
    ),
    "queues": ("Queue", "DeadLetterQueue", "DeadLetterAlarm", "AgeAlarm", "QueueUrl"),
    "schedules": ("Schedule",),
}

_NUMBERED = ("PublicSubnet{}", "PublicSubnet{}RouteTableAssociation", "PrivateSubnet{}",
             "PrivateSubnet{}RouteTableAssociation", "PrivateRouteTable{}", "PrivateDefaultRoute{}",
             "DatabaseSubnet{}", "DatabaseSubnet{}RouteTableAssociation", "NatGateway{}", "NatGateway{}Eip")
# Stack-wide logical IDs (resources, parameters, conditions, outputs).
GLOBAL_IDS: frozenset[str] = frozenset({
    "Vpc", "VpcId", "SubnetIds", "InternetGateway", "VpcGatewayAttachment", "PublicRouteTable",
    "PublicDefaultRoute", "DatabaseRouteTable", "NatInstance", "NatInstanceEip", "NatInstanceLaunchTemplate",
    "NatInstanceSecurityGroup",
    "AlertKey", "AlertTopic", "AlertTopicArn", "AlertEmail", "AlertEmailSubscription", "HasAlertEmail",
    "Database", "DatabaseSubnetGroup", "DatabaseSecurityGroup", "DatabaseClientSecurityGroup",
    "DatabaseIngressFromClients", "DatabaseClientEgress", "DatabaseEndpoint",
    "DatabaseUrlParameter", "DatabaseUrlSecretArn", "DatabaseUrlInSecretsManager",
    "Cluster", "ClusterCapacityProviders", "TaskSecurityGroup", "RuntimeImage",
    "LoadBalancer", "LoadBalancerSecurityGroup", "LoadBalancerListenersReady", "LoadBalancerUrl",
    "LoadBalancer5xxAlarm", "LoadBalancerLogsBucket", "LoadBalancerLogsBucketPolicy",
    "HttpListener", "HttpsListener", "CertificateArn", "HasCertificate", "ApiUrl",
    "SchedulerFunction", "SchedulerFunctionRole", "SchedulerLogGroup", "SchedulerSecurityGroup", "SchedulerRole",
    "SchedulerDeadLetterQueue", "SchedulerDeadLetterAlarm", "SchedulerInvokeConfig",
    "SchedulerErrorsAlarm", "SweeperSchedule",
    "Dashboard", "DashboardUrl", "Distribution", "AppUrl",
    *(pattern.format(i) for pattern in _NUMBERED for i in (1, 2, 3)),
})


def stack_name(app: str, environment: str) -> str:
    """The CloudFormation stack of an application in an environment: `<app>-<env>` (fbc's default for
    --stack-name, and the stem of fbc build's files)."""
    return f"{app}-{environment}"


def pascal(name: str) -> str:
    """DNS-label name -> alphanumeric PascalCase: 'api-v2' -> 'ApiV2'."""
    return "".join(part[:1].upper() + part[1:] for part in name.split("-"))


def logical_ids(kind: str, name: str) -> list[str]:
    base = pascal(name)
    return [base + suffix for suffix in KIND_SUFFIXES[kind]]


def queue_name(app: str, environment: str, queue: str, *, dead_letter: bool, fifo: bool) -> str:
    """The physical SQS name the compiler gives a queue (validation checks its length against SQS's 80)."""
    return f"{app}-{environment}-{queue}{'-dlq' if dead_letter else ''}{'.fifo' if fifo else ''}"
