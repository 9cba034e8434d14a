"""The architecture as data: what the template creates, where it sits, and who sends to whom.

What each resource is, and which service, queue or schedule it serves, comes from the build's manifest;
placement from the template (a resource sits in the tier of the subnets it names, and the manifest says each
subnet's tier); meaning from the plan (which service is the API, which queue carries executions)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Literal

from ..build import Compiled
from ..emit import manifest
from ..emit.manifest import SCHEDULER, STACK, Manifest, Role
from ..emit.manifest import Node as Serves
from ..naming import pascal
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


# What the diagram shows, and the plumbing it leaves out: together exactly the types the compiler emits
# (tests/test_manifest.py).
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
    "AWS::EC2::InternetGateway", "AWS::EC2::LaunchTemplate", "AWS::EC2::Route", "AWS::EC2::RouteTable",
    "AWS::EC2::SecurityGroup", "AWS::EC2::SecurityGroupEgress", "AWS::EC2::SecurityGroupIngress",
    "AWS::EC2::SubnetRouteTableAssociation", "AWS::EC2::VPCGatewayAttachment", "AWS::ECS::Cluster",
    "AWS::ECS::ClusterCapacityProviderAssociations", "AWS::ElasticLoadBalancingV2::Listener",
    "AWS::ElasticLoadBalancingV2::TargetGroup", "AWS::IAM::Role", "AWS::KMS::Key", "AWS::Lambda::EventInvokeConfig",
    "AWS::Lambda::Permission", "AWS::Logs::LogGroup", "AWS::RDS::DBSubnetGroup", "AWS::S3::Bucket",
    "AWS::S3::BucketPolicy", "AWS::SNS::Subscription",
})

# The group of each subnet tier; an existing VPC's subnets are a parameter, not resources of the stack.
TIERS: dict[Role, tuple[str, str]] = {"public-subnet": ("public", "public subnets"),
                                      "private-subnet": ("private", "private subnets"),
                                      "database-subnet": ("data", "database subnets")}
EXISTING_SUBNETS = ("subnets", "your subnets (public, no NAT)")

LOAD_BALANCER, LISTENER_RULE = "AWS::ElasticLoadBalancingV2::LoadBalancer", "AWS::ElasticLoadBalancingV2::ListenerRule"
DISTRIBUTION, FUNCTION_URL, FUNCTION = "AWS::CloudFront::Distribution", "AWS::Lambda::Url", "AWS::Lambda::Function"
NAT_GATEWAY, NAT_INSTANCE = "AWS::EC2::NatGateway", "AWS::EC2::Instance"
DATABASE, DATABASE_SUBNETS = "AWS::RDS::DBInstance", "AWS::RDS::DBSubnetGroup"
ECS_SERVICE, TASK_DEFINITION, PIPE = "AWS::ECS::Service", "AWS::ECS::TaskDefinition", "AWS::Pipes::Pipe"
SCHEDULE, ALARM, TOPIC = "AWS::Scheduler::Schedule", "AWS::CloudWatch::Alarm", "AWS::SNS::Topic"


class _Reader:
    def __init__(self, compiled: Compiled) -> None:
        self.plan: Plan = compiled.plan
        self.manifest: Manifest = compiled.manifest
        self.resources: dict[str, dict[str, Any]] = json.loads(compiled.built.body)["Resources"]
        self.diagram = Diagram(f"{self.plan.stack_name} ({self.plan.profile} profile)")

    def find(self, node: Serves | None = None, role: Role | None = None, kind: str | None = None) -> list[str]:
        """Logical IDs by the manifest, in the template's order."""
        return [e.logical_id for e in self.manifest.find(node, role, kind)]

    def one(self, node: Serves | None = None, role: Role | None = None, kind: str | None = None) -> str | None:
        entry = self.manifest.one(node, role, kind)
        return None if entry is None else entry.logical_id

    def the(self, node: Serves, role: Role, kind: str | None = None) -> str:
        found = self.one(node, role, kind)
        assert found is not None, f"the build made no {role} for {node}"
        return found

    def queue(self, name: str) -> str:
        return self.the(manifest.queue(name), "queue")

    def props(self, rid: str) -> dict[str, Any]:
        return dict(self.resources[rid].get("Properties", {}))

    def tier(self, subnets: Any) -> str | None:
        """The group of the subnets a resource is placed in: Refs to this stack's subnets, or a Ref to the
        existing VPC's subnet parameter."""
        refs = _references(subnets)
        roles = {self.manifest[ref].role for ref in refs if ref in self.manifest}
        found = next((TIERS[role] for role in TIERS if role in roles), None)
        if found is None and refs and self.plan.decisions.network.vpc == "existing":
            found = EXISTING_SUBNETS
        if found is None:
            return None
        group, label = found
        if not any(g.id == group for g in self.diagram.groups):
            self.diagram.groups.append(Group(group, label, "vpc"))
        return group


def _references(value: Any) -> list[str]:
    """The logical IDs a template value names through Ref or Fn::GetAtt, at any depth."""
    if isinstance(value, list):
        return [ref for item in value for ref in _references(item)]
    if not isinstance(value, dict):
        return []
    if "Ref" in value:
        return [str(value["Ref"])]
    if "Fn::GetAtt" in value:
        return [str(value["Fn::GetAtt"][0])]
    return [ref for item in value.values() for ref in _references(item)]


def build(compiled: Compiled) -> Diagram:
    r = _Reader(compiled)
    plan, d = r.plan, r.diagram
    d.groups.append(Group("aws", f"AWS {plan.region}"))
    d.groups.append(Group("vpc", "VPC (new)" if plan.decisions.network.vpc == "new" else "VPC (existing)", "aws"))
    users = d.add(Node("Users", "Users", "clients on the internet", "client"))
    internet = d.add(Node("Internet", "Internet", "what HTTP steps call", "client"))

    # Ingress: a load balancer routing by path, or function URLs (the public ones behind CloudFront).
    load_balancer = r.one(STACK, "ingress", LOAD_BALANCER)
    if load_balancer is not None:
        props = r.props(load_balancer)
        d.add(Node(load_balancer, "Application Load Balancer", props.get("Scheme", ""), "gateway",
                   r.tier(props["Subnets"])))
        d.link(users, load_balancer, "HTTP(S)")
    # CloudFront: one origin per public function URL (its domain name reads the URL), a path per behaviour.
    fronted = set()
    for rid in r.find(STACK, "ingress", DISTRIBUTION):
        config = r.props(rid)["DistributionConfig"]
        d.add(Node(rid, "CloudFront", "one origin for the web services (no CORS), no cache, $0 idle", "gateway"))
        d.link(users, rid, "HTTPS")
        urls = {origin["Id"]: _references(origin["DomainName"])[0] for origin in config["Origins"]}
        routes: dict[str, list[str]] = {urls[config["DefaultCacheBehavior"]["TargetOriginId"]]: ["default"]}
        for behaviour in config.get("CacheBehaviors", []):
            routes.setdefault(urls[behaviour["TargetOriginId"]], []).append(behaviour["PathPattern"])
        for url, paths in routes.items():
            d.link(rid, r.the(r.manifest[url].node, "function", FUNCTION), ", ".join(paths))
            fronted.add(url)
    for rid in r.find(kind=FUNCTION_URL):
        if rid not in fronted:
            iam = r.props(rid).get("AuthType") == "AWS_IAM"
            target = r.the(r.manifest[rid].node, "function", FUNCTION)
            d.link(users, target, "function URL (IAM)" if iam else "function URL")

    # NAT: how private tasks reach the internet.
    nats = []
    for rid in r.find(STACK, "nat", NAT_GATEWAY) + r.find(STACK, "nat", NAT_INSTANCE):
        props = r.props(rid)
        label = "NAT gateway" if r.manifest[rid].type == NAT_GATEWAY else f"NAT instance {props['InstanceType']}"
        nats.append(d.add(Node(rid, label, "outbound only", "gateway", r.tier(props.get("SubnetId")) or "public")))
        d.link(rid, internet, "outbound")

    # Queues with their dead-letter queues (regional, outside the VPC).
    for queue in plan.queues:
        main, dead = r.queue(queue.name), r.the(manifest.queue(queue.name), "dead-letter")
        d.add(Node(main, f"SQS {queue.name}", f"visibility {queue.visibility_timeout} s", "queue", "aws"))
        d.add(Node(dead, f"SQS {queue.name} DLQ", f"after {queue.max_receive_count} receives", "queue", "aws"))
        d.link(main, dead, f"after {queue.max_receive_count} receives")

    # The database: RDS in the database subnets, or an external one.
    rds = r.one(STACK, "database", DATABASE)
    if rds is not None:
        props = r.props(rds)
        multi = "Multi-AZ" if props.get("MultiAZ") is True else "Single-AZ"
        subnet_group = r.one(STACK, "database", DATABASE_SUBNETS)
        group = r.tier(r.props(subnet_group)["SubnetIds"]) if subnet_group is not None else None
        database = d.add(Node(rds, f"RDS PostgreSQL {props.get('EngineVersion', '')}",
                              f"{props['DBInstanceClass']}, {multi}", "database", group))
    else:  # a node of the diagram only (no resource), named as RDS would be
        database = d.add(Node("Database", "PostgreSQL (external)", "URL from SSM or Secrets Manager", "database"))

    # Services: ECS services, Lambda web functions, Pipe-started tasks.
    for service in plan.services:
        serves = manifest.service(service.name)
        ecs, fn = r.one(serves, "compute", ECS_SERVICE), r.one(serves, "function", FUNCTION)
        pipe = r.one(serves, "dispatch", PIPE)
        what = "API" if service.role == "api" else "worker" if service.role == "worker" else "own image"
        if ecs is not None:
            subnets = r.props(ecs)["NetworkConfiguration"]["AwsvpcConfiguration"]["Subnets"]
            node = d.add(Node(ecs, service.name, f"ECS Fargate, {what}, {service.scaling_min}..{service.scaling_max} "
                              f"tasks", "service", r.tier(subnets)))
        elif fn is not None:  # in the VPC's subnets when it joins them to reach the database
            vpc = r.props(fn).get("VpcConfig")
            node = d.add(Node(fn, service.name, f"Lambda, {what}", "function",
                              r.tier(vpc["SubnetIds"]) if vpc else "aws"))
        elif pipe is not None:
            target = r.props(pipe)["TargetParameters"]["EcsTaskParameters"]
            capacity = target["CapacityProviderStrategy"][0]["CapacityProvider"]
            d.add(Node(pipe, f"EventBridge Pipe {service.name}", "one task per message", "pipe", "aws"))
            node = d.add(Node(r.the(serves, "task", TASK_DEFINITION), service.name,
                              f"ECS task on {capacity.replace('_', ' ').title()}, {what}", "service",
                              r.tier(target["NetworkConfiguration"]["AwsvpcConfiguration"]["Subnets"])))
            assert service.queue is not None
            d.link(r.queue(service.queue), pipe, "message")
            d.link(pipe, node, "RunTask")
        else:
            continue
        for rule in r.find(serves, "ingress", LISTENER_RULE):
            assert load_balancer is not None
            d.link(load_balancer, node, r.props(rule)["Conditions"][0]["PathPatternConfig"]["Values"][0])
        if service.public and ecs is not None and not any(e.target == node for e in d.edges):
            assert load_balancer is not None
            d.link(load_balancer, node, "default")
        if service.kind == "worker" and service.queue and ecs is not None:
            d.link(r.queue(service.queue), node, "long poll")
        if service.role == "api" and plan.runtime_queue:
            d.link(node, r.queue(plan.runtime_queue), "send execution")
        if service.role is not None:
            d.link(node, database, "SQL")
        if service.kind == "worker":  # tasks are in private subnets exactly when there is a NAT
            d.link(node, nats[0] if nats else internet, "HTTP steps")

    # Schedules fire the scheduler function, which records executions and sends them.
    scheduler = r.one(SCHEDULER, "function", FUNCTION)
    if scheduler is not None:
        vpc = r.props(scheduler).get("VpcConfig")
        d.add(Node(scheduler, "scheduler", "Lambda: schedules and sweeper", "function",
                   r.tier(vpc["SubnetIds"]) if vpc else "aws"))
        for entry in r.manifest.find(role="schedule", type=SCHEDULE):
            rid, props = entry.logical_id, r.props(entry.logical_id)
            state = "" if props.get("State") != "DISABLED" else ", disabled"
            name = pascal(entry.node.name) if entry.node.name is not None else "Sweeper"  # the scheduler's own
            d.add(Node(rid, name, f"{props['ScheduleExpression']} {props.get('ScheduleExpressionTimezone', 'UTC')}"
                       f"{state}", "schedule", "aws"))
            d.link(rid, scheduler, "invoke")
        if plan.runtime_queue:
            d.link(scheduler, r.queue(plan.runtime_queue), "send execution")
        d.link(scheduler, database, "SQL")

    # Alerts.
    alarms = r.find(role="alarm", kind=ALARM)  # the scaling policies' alarms notify no one
    topic = r.one(STACK, "alerts", TOPIC)
    if alarms and topic is not None:
        d.add(Node("Alarms", f"CloudWatch alarms ({len(alarms)})", "", "schedule", "aws"))
        d.add(Node(topic, "SNS alerts", plan.alert_email or "no e-mail subscribed", "topic", "aws"))
        d.link("Alarms", topic, "ALARM")
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
