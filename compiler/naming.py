"""Logical IDs and the stack name: stable, derived from names, and a compatibility contract (SAM treats its
scheme so).

`workflow-requests` -> `WorkflowRequests`; each kind of spec entry appends fixed suffixes, and stack-wide
resources have fixed IDs. Changing either replaces live resources, so tests pin both. Emitters, `fbc cost` and
`fbc graph` make every per-entry and numbered ID with the functions below, whose suffix types are the lists
that validation checks names against: an ID no function here can make cannot be written, and a suffix added
to a type is checked for collisions at once.
"""

from __future__ import annotations

from typing import Literal, Protocol, get_args

# Suffixes per kind of spec entry (resources, parameters and outputs share them).
ServiceSuffix = Literal[
    "Service", "TaskDefinition", "TaskRole", "ExecutionRole", "LogGroup", "Image", "ServiceUrl",
    "TargetGroup", "ListenerRule", "IngressFromLoadBalancer", "EgressFromLoadBalancer",
    "ScalableTarget", "CPUScalingPolicy", "MemoryScalingPolicy", "ScaleOutPolicy", "ScaleInPolicy",
    "QueueNotEmptyAlarm", "QueueEmptyAlarm", "Pipe", "PipeRole",
    "Function", "FunctionRole", "FunctionUrl", "FunctionUrlPermission", "FunctionInvokePermission",
    "SecurityGroup",  # a runtime function that joins the VPC
]
QueueSuffix = Literal["Queue", "DeadLetterQueue", "DeadLetterAlarm", "AgeAlarm", "QueueUrl"]
ScheduleSuffix = Literal["Schedule"]
# The scheduler is no spec entry but is named the same way: Scheduler<suffix>.
SchedulerSuffix = Literal["Function", "FunctionRole", "LogGroup", "SecurityGroup", "Role", "DeadLetterQueue",
                          "DeadLetterAlarm", "InvokeConfig", "ErrorsAlarm"]
# What emit.functions names for any function: a web service's and the scheduler's alike.
FunctionSuffix = Literal["Function", "FunctionRole", "LogGroup", "SecurityGroup"]
Tier = Literal["Public", "Private", "Database"]

KIND_SUFFIXES: dict[str, tuple[str, ...]] = {
    "services": get_args(ServiceSuffix), "queues": get_args(QueueSuffix), "schedules": get_args(ScheduleSuffix),
}


class Named(Protocol):
    """A plan entry (ServicePlan, QueuePlan, SchedulePlan): its spec name is its IDs' stem."""

    @property
    def name(self) -> str: ...


def pascal(name: str) -> str:
    """DNS-label name -> alphanumeric PascalCase: 'api-v2' -> 'ApiV2'."""
    return "".join(part[:1].upper() + part[1:] for part in name.split("-"))


def service_id(service: Named | str, suffix: ServiceSuffix) -> str:
    """A service's logical ID for `suffix`, from its plan entry or (while the plan is being made) its name."""
    return pascal(service if isinstance(service, str) else service.name) + suffix


def queue_id(queue: Named, suffix: QueueSuffix) -> str:
    return pascal(queue.name) + suffix


def schedule_id(schedule: Named) -> str:
    return pascal(schedule.name) + "Schedule"


def scheduler_id(suffix: SchedulerSuffix) -> str:
    return "Scheduler" + suffix


def subnet_id(tier: Tier, n: int) -> str:
    return f"{tier}Subnet{n}"


def subnet_association_id(tier: Tier, n: int) -> str:
    return f"{subnet_id(tier, n)}RouteTableAssociation"


def private_route_table_id(n: int) -> str:
    return f"PrivateRouteTable{n}"


def private_default_route_id(n: int) -> str:
    return f"PrivateDefaultRoute{n}"


def nat_gateway_id(n: int) -> str:
    return f"NatGateway{n}"


def nat_gateway_eip_id(n: int) -> str:
    return f"{nat_gateway_id(n)}Eip"


_ZONES = (1, 2, 3)  # profiles.py allows azCount 1..3
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
    *(scheduler_id(suffix) for suffix in get_args(SchedulerSuffix)), "SweeperSchedule",
    "Dashboard", "DashboardUrl", "Distribution", "AppUrl",
    *(make(tier, n) for make in (subnet_id, subnet_association_id) for tier in get_args(Tier) for n in _ZONES),
    *(make(n) for make in (private_route_table_id, private_default_route_id, nat_gateway_id, nat_gateway_eip_id)
      for n in _ZONES),
})


def stack_name(app: str, environment: str) -> str:
    """The CloudFormation stack of an application in an environment: `<app>-<env>` (fbc's default for
    --stack-name, and the stem of fbc build's files)."""
    return f"{app}-{environment}"


def logical_ids(kind: str, name: str) -> list[str]:
    base = pascal(name)
    return [base + suffix for suffix in KIND_SUFFIXES[kind]]


def queue_name(app: str, environment: str, queue: str, *, dead_letter: bool, fifo: bool) -> str:
    """The physical SQS name the compiler gives a queue (validation checks its length against SQS's 80)."""
    return f"{app}-{environment}-{queue}{'-dlq' if dead_letter else ''}{'.fifo' if fifo else ''}"
