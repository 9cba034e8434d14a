"""The architecture as data: what the template creates, where it sits, and who sends to whom.

Placement comes from the template (a resource sits in the subnet tier its subnets belong to), meaning from
the plan (which service is the API, which queue carries executions)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Literal

from ..build import Compiled
from ..plan import Plan

Shape = Literal["client", "gateway", "service", "function", "queue", "database", "schedule", "topic", "pipe"]


@dataclass(frozen=True)
class Group:
    id: str
    label: str
    parent: str | None = None


@dataclass(frozen=True)
class Node:
    id: str
    label: str
    detail: str
    shape: Shape
    group: str | None = None


@dataclass(frozen=True)
class Edge:
    source: str
    target: str
    label: str = ""


@dataclass
class Diagram:
    title: str
    groups: list[Group] = field(default_factory=list)
    nodes: list[Node] = field(default_factory=list)
    edges: list[Edge] = field(default_factory=list)

    def add(self, node: Node) -> str:
        self.nodes.append(node)
        return node.id

    def link(self, source: str, target: str, label: str = "") -> None:
        self.edges.append(Edge(source, target, label))


# What the diagram shows, and the plumbing it leaves out; a test keeps every emitted type in one of the two.
DRAWN = frozenset({
    "AWS::ElasticLoadBalancingV2::LoadBalancer", "AWS::ElasticLoadBalancingV2::ListenerRule", "AWS::Lambda::Url",
    "AWS::EC2::NatGateway", "AWS::EC2::Instance", "AWS::EC2::VPC", "AWS::EC2::Subnet", "AWS::SQS::Queue",
    "AWS::RDS::DBInstance", "AWS::ECS::Service", "AWS::Lambda::Function", "AWS::Pipes::Pipe",
    "AWS::ECS::TaskDefinition", "AWS::Scheduler::Schedule", "AWS::CloudWatch::Alarm", "AWS::SNS::Topic",
    "AWS::CloudFront::Distribution",
})
NOT_DRAWN = frozenset({
    "AWS::ApplicationAutoScaling::ScalableTarget", "AWS::ApplicationAutoScaling::ScalingPolicy",
    "AWS::CloudFormation::WaitConditionHandle", "AWS::CloudWatch::Dashboard", "AWS::EC2::EIP",
    "AWS::EC2::EIPAssociation", "AWS::EC2::InternetGateway", "AWS::EC2::LaunchTemplate",
    "AWS::EC2::NetworkInterface", "AWS::EC2::Route", "AWS::EC2::RouteTable", "AWS::EC2::SecurityGroup",
    "AWS::EC2::SecurityGroupEgress", "AWS::EC2::SecurityGroupIngress", "AWS::EC2::SubnetRouteTableAssociation",
    "AWS::EC2::VPCGatewayAttachment", "AWS::ECS::Cluster", "AWS::ECS::ClusterCapacityProviderAssociations",
    "AWS::ElasticLoadBalancingV2::Listener", "AWS::ElasticLoadBalancingV2::TargetGroup", "AWS::IAM::Role",
    "AWS::KMS::Key", "AWS::Lambda::EventInvokeConfig", "AWS::Lambda::Permission", "AWS::Logs::LogGroup",
    "AWS::RDS::DBSubnetGroup", "AWS::S3::Bucket", "AWS::S3::BucketPolicy", "AWS::SNS::Subscription",
})

# Subnet tiers, by the logical-ID prefix of the subnets a resource uses (compiler/emit/network.py names them).
TIERS = {"PublicSubnet": ("public", "public subnets"), "PrivateSubnet": ("private", "private subnets"),
         "DatabaseSubnet": ("data", "database subnets"), "SubnetIds": ("subnets", "your subnets (public, no NAT)")}


class _Reader:
    def __init__(self, compiled: Compiled) -> None:
        self.plan: Plan = compiled.plan
        template = json.loads(compiled.built.body)
        self.resources: dict[str, dict[str, Any]] = template["Resources"]
        self.diagram = Diagram(f"{self.plan.stack_name} ({self.plan.profile} profile)")

    def of_type(self, kind: str) -> list[str]:
        return [rid for rid, r in self.resources.items() if r["Type"] == kind]

    def props(self, rid: str) -> dict[str, Any]:
        return dict(self.resources[rid].get("Properties", {}))

    def tier(self, subnets: Any) -> str | None:
        """The group of the subnets a resource is placed in (a list of Refs, or a Ref to the parameter)."""
        text = json.dumps(subnets)
        for prefix, (group, label) in TIERS.items():
            if f'"{prefix}' in text:
                if not any(g.id == group for g in self.diagram.groups):
                    self.diagram.groups.append(Group(group, label, "vpc"))
                return group
        return None


def build(compiled: Compiled) -> Diagram:
    r = _Reader(compiled)
    plan, d = r.plan, r.diagram
    d.groups.append(Group("aws", f"AWS {plan.region}"))
    new_vpc = bool(r.of_type("AWS::EC2::VPC"))
    d.groups.append(Group("vpc", "VPC (new)" if new_vpc else "VPC (existing)", "aws"))
    users = d.add(Node("Users", "Users", "clients on the internet", "client"))
    internet = d.add(Node("Internet", "Internet", "what HTTP steps call", "client"))

    # Ingress: a load balancer routing by path, or function URLs (the public ones behind CloudFront).
    for rid in r.of_type("AWS::ElasticLoadBalancingV2::LoadBalancer"):
        props = r.props(rid)
        d.add(Node(rid, "Application Load Balancer", props.get("Scheme", ""), "gateway", r.tier(props["Subnets"])))
        d.link(users, rid, "HTTP(S)")
    # CloudFront: one origin in front of the public function URLs, a path per behaviour.
    fronted = set()
    for rid in r.of_type("AWS::CloudFront::Distribution"):
        config = r.props(rid)["DistributionConfig"]
        d.add(Node(rid, "CloudFront", "one origin for the web services (no CORS), no cache, $0 idle", "gateway"))
        d.link(users, rid, "HTTPS")
        routes: dict[str, list[str]] = {config["DefaultCacheBehavior"]["TargetOriginId"]: ["default"]}
        for behaviour in config.get("CacheBehaviors", []):
            routes.setdefault(behaviour["TargetOriginId"], []).append(behaviour["PathPattern"])
        for origin, paths in routes.items():  # origin IDs are the function URLs' logical IDs
            d.link(rid, r.props(origin)["TargetFunctionArn"]["Fn::GetAtt"][0], ", ".join(paths))
            fronted.add(origin)
    for rid in r.of_type("AWS::Lambda::Url"):
        if rid not in fronted:
            target = r.props(rid)["TargetFunctionArn"]["Fn::GetAtt"][0]
            iam = r.props(rid).get("AuthType") == "AWS_IAM"
            d.link(users, target, "function URL (IAM)" if iam else "function URL")

    # NAT: how private tasks reach the internet.
    for rid in r.of_type("AWS::EC2::NatGateway") + r.of_type("AWS::EC2::Instance"):
        props = r.props(rid)
        label = "NAT gateway" if "NatGateway" in r.resources[rid]["Type"] else f"NAT instance {props['InstanceType']}"
        subnet = props.get("SubnetId") or [r.props(n).get("SubnetId") for n in r.of_type("AWS::EC2::NetworkInterface")]
        d.add(Node(rid, label, "outbound only", "gateway", r.tier(subnet) or "public"))
        d.link(rid, internet, "outbound")
    nats = [n.id for n in d.nodes if n.label.startswith("NAT")]

    # Queues with their dead-letter queues (regional, outside the VPC).
    for queue in plan.queues:
        main, dead = f"{queue.id}Queue", f"{queue.id}DeadLetterQueue"
        d.add(Node(main, f"SQS {queue.name}", f"visibility {queue.visibility_timeout} s", "queue", "aws"))
        d.add(Node(dead, f"SQS {queue.name} DLQ", f"after {queue.max_receive_count} receives", "queue", "aws"))
        d.link(main, dead, f"after {queue.max_receive_count} receives")

    # The database: RDS in the database subnets, or an external one.
    if r.of_type("AWS::RDS::DBInstance"):
        props = r.props("Database")
        multi = "Multi-AZ" if props.get("MultiAZ") is True else "Single-AZ"
        group = r.tier(r.props("DatabaseSubnetGroup")["SubnetIds"]) if "DatabaseSubnetGroup" in r.resources else None
        d.add(Node("Database", f"RDS PostgreSQL {props.get('EngineVersion', '')}",
                   f"{props['DBInstanceClass']}, {multi}", "database", group))
    else:
        d.add(Node("Database", "PostgreSQL (external)", "URL from SSM or Secrets Manager", "database"))

    # Services: ECS services, Lambda web functions, Pipe-started tasks.
    for service in plan.services:
        ecs, fn = f"{service.id}Service", f"{service.id}Function"
        what = "API" if service.role == "api" else "worker" if service.role == "worker" else "own image"
        if ecs in r.resources:
            props = r.props(ecs)
            subnets = props["NetworkConfiguration"]["AwsvpcConfiguration"]["Subnets"]
            d.add(Node(ecs, service.name, f"ECS Fargate, {what}, {service.scaling_min}..{service.scaling_max} tasks",
                       "service", r.tier(subnets)))
            node = ecs
        elif fn in r.resources:
            d.add(Node(fn, service.name, f"Lambda, {what}", "function", "aws"))
            node = fn
        elif f"{service.id}Pipe" in r.resources:
            pipe, task = f"{service.id}Pipe", f"{service.id}TaskDefinition"
            target = r.props(pipe)["TargetParameters"]["EcsTaskParameters"]
            capacity = target["CapacityProviderStrategy"][0]["CapacityProvider"]
            d.add(Node(pipe, f"EventBridge Pipe {service.name}", "one task per message", "pipe", "aws"))
            d.add(Node(task, service.name, f"ECS task on {capacity.replace('_', ' ').title()}, {what}", "service",
                       r.tier(target["NetworkConfiguration"]["AwsvpcConfiguration"]["Subnets"])))
            assert service.queue is not None
            d.link(plan.queue(service.queue).id + "Queue", pipe, "message")
            d.link(pipe, task, "RunTask")
            node = task
        else:
            continue
        for rid in r.of_type("AWS::ElasticLoadBalancingV2::ListenerRule"):
            if r.props(rid)["Actions"][0]["TargetGroupArn"] == {"Ref": f"{service.id}TargetGroup"}:
                path = r.props(rid)["Conditions"][0]["PathPatternConfig"]["Values"][0]
                d.link("LoadBalancer", node, path)
        if service.public and ecs in r.resources and not any(e.target == node for e in d.edges):
            d.link("LoadBalancer", node, "default")
        if service.kind == "worker" and service.queue and ecs in r.resources:
            d.link(plan.queue(service.queue).id + "Queue", node, "long poll")
        if service.role == "api" and plan.runtime_queue:
            d.link(node, plan.queue(plan.runtime_queue).id + "Queue", "send execution")
        if service.role is not None:
            d.link(node, "Database", "SQL")
        if service.kind == "worker":
            d.link(node, nats[0] if nats and node == ecs else internet, "HTTP steps")

    # Schedules fire the scheduler function, which records executions and sends them.
    if "SchedulerFunction" in r.resources:
        vpc = r.props("SchedulerFunction").get("VpcConfig")
        d.add(Node("SchedulerFunction", "scheduler", "Lambda: schedules and sweeper", "function",
                   r.tier(vpc["SubnetIds"]) if vpc else "aws"))
        for rid in r.of_type("AWS::Scheduler::Schedule"):
            props = r.props(rid)
            state = "" if props.get("State") != "DISABLED" else ", disabled"
            d.add(Node(rid, rid.removesuffix("Schedule"), f"{props['ScheduleExpression']} "
                       f"{props.get('ScheduleExpressionTimezone', 'UTC')}{state}", "schedule", "aws"))
            d.link(rid, "SchedulerFunction", "invoke")
        if plan.runtime_queue:
            d.link("SchedulerFunction", plan.queue(plan.runtime_queue).id + "Queue", "send execution")
        d.link("SchedulerFunction", "Database", "SQL")

    # Alerts.
    alarms = r.of_type("AWS::CloudWatch::Alarm")
    if alarms and "AlertTopic" in r.resources:
        d.add(Node("Alarms", f"CloudWatch alarms ({len(alarms)})", "", "schedule", "aws"))
        d.add(Node("AlertTopic", "SNS alerts", plan.alert_email or "no e-mail subscribed", "topic", "aws"))
        d.link("Alarms", "AlertTopic", "ALARM")
    _drop_empty_groups(d)
    return d


def _drop_empty_groups(d: Diagram) -> None:
    used = {n.group for n in d.nodes}
    changed = True
    while changed:  # a group is kept if a node or a kept group is in it
        parents = {g.parent for g in d.groups if g.id in used}
        changed = not parents <= used
        used |= parents
    d.groups = [g for g in d.groups if g.id in used]
