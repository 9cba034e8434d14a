"""One pricer per CloudFormation resource type (cfn-lint's rule registry, applied to money) over the build's
manifest: what each resource serves and does comes from it, amounts (Cpu, Memory, instance classes) from the
template's values, and what neither can say (how many executions reach a worker) from the plan. Each pricer
yields lines: idle (billed with no traffic) or usage (grows with traffic). AWS's always-free allowances are
then applied, idle lines first."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from datetime import date, timedelta
from typing import Any, Literal

from .. import contract
from ..build import Compiled
from ..emit import record
from ..emit.manifest import SCHEDULER, Manifest
from ..emit.manifest import service as service_node
from ..emit.record import Facts, ServiceFacts
from ..schedule_expr import Rate, parse
from .prices import Prices, Unpriced
from .usage import (
    ALB_MIN_ZONES,
    FARGATE_MINIMUM_SECONDS,
    HOURS_PER_MONTH,
    LONG_POLL_SECONDS,
    NEW_CONNECTIONS_PER_LCU_HOUR,
    PIPE_POLLERS,
    REQUEST_SECONDS,
    RESPONSE_KB,
    SCHEDULER_SECONDS,
    TASK_STARTUP_SECONDS,
    VISIBILITY_EXTEND_SECONDS,
    Usage,
)

Kind = Literal["idle", "usage"]
KMS_BILLED_ROTATIONS = 2  # rotations after the second are not billed (AWS KMS pricing, since April 2024)


@dataclass(frozen=True)
class Line:
    resource: str  # logical ID
    kind: Kind
    what: str
    meter: str
    quantity: float  # per month, in the meter's unit
    rate: float  # USD per unit (after the Spot discount where it applies)
    free: float = 0.0  # USD covered by an always-free allowance
    spot_discount: float = 0.0  # the Fargate Spot discount in `rate` (0: not on Spot)

    @property
    def cost(self) -> float:
        return self.quantity * self.rate

    @property
    def after(self) -> float:
        return self.cost - self.free


@dataclass(frozen=True)
class AllowanceUse:
    name: str
    meter: str
    quantity: float
    value: float


@dataclass(frozen=True)
class NotPriced:
    resource: str
    type: str
    reason: str


@dataclass
class Estimate:
    facts: Facts
    prices: Prices
    usage: Usage
    lines: list[Line] = field(default_factory=list)
    allowances: list[AllowanceUse] = field(default_factory=list)
    not_priced: list[NotPriced] = field(default_factory=list)
    free_resources: dict[str, int] = field(default_factory=dict)

    shared_with: tuple[str, ...] = ()  # the other stacks counted against the same account's allowances

    def total(self, kind: Kind | None = None, after: bool = False) -> float:
        return sum(line.after if after else line.cost for line in self.lines if kind in (None, line.kind))

    def at_spot_discount(self, discount: float) -> float:
        """The total after allowances were Fargate Spot `discount` below on-demand (no allowance covers Fargate)."""
        return sum(line.after + line.cost * ((1 - discount) / (1 - line.spot_discount) - 1)
                   if line.spot_discount else line.after for line in self.lines)

    @property
    def on_spot(self) -> bool:
        return any(line.spot_discount for line in self.lines)

    def by_resource(self, after: bool = True) -> dict[str, float]:
        out: dict[str, float] = {}
        for line in self.lines:
            out[line.resource] = out.get(line.resource, 0.0) + (line.after if after else line.cost)
        return out


class Context:
    """What a pricer may read: the manifest, the template's resources, the plan's facts, the prices and the
    usage."""

    def __init__(self, plan: Facts, manifest: Manifest, template: dict[str, Any], prices: Prices,
                 usage: Usage) -> None:
        self.plan, self.manifest, self.prices, self.usage = plan, manifest, prices, usage
        self.resources: dict[str, dict[str, Any]] = template["Resources"]

    def line(self, resource: str, kind: Kind, what: str, meter: str, quantity: float, key: str | None = None,
             discount: float = 0.0) -> Line:
        return Line(resource, kind, what, meter, quantity, self.prices.rate(meter, key) * (1 - discount),
                    spot_discount=discount)

    def props(self, logical_id: str) -> dict[str, Any]:
        return dict(self.resources[logical_id].get("Properties", {}))

    def service(self, resource: str) -> ServiceFacts | None:
        """The service a resource serves (None: it serves no service)."""
        node = self.manifest[resource].node
        return next((s for s in self.plan.services if service_node(s.name) == node), None)

    def fargate(self, resource: str, kind: Kind, task_definition: str, task_hours: float, capacity: str,
                public_ip: bool, what: str) -> Iterator[Line]:
        task = self.props(task_definition)
        arch = task.get("RuntimePlatform", {}).get("CpuArchitecture", "X86_64")
        discount = self.usage.spot_discount if capacity == "FARGATE_SPOT" else 0.0
        label = f"{what} on {'Fargate Spot' if discount else 'Fargate'}"
        yield self.line(resource, kind, f"{label}: vCPU", "fargate-vcpu-hour",
                        task_hours * int(task["Cpu"]) / 1024, arch, discount)
        yield self.line(resource, kind, f"{label}: memory", "fargate-gb-hour",
                        task_hours * int(task["Memory"]) / 1024, arch, discount)
        if public_ip:
            yield self.line(resource, kind, f"{what}: public IPv4 while running", "public-ipv4-hour", task_hours)


def _ref(value: Any) -> str:
    return str(value["Ref"]) if isinstance(value, dict) and "Ref" in value else ""


def _capacity(strategy: list[dict[str, Any]] | None, launch_type: str | None = None) -> str:
    return str(strategy[0]["CapacityProvider"]) if strategy else (launch_type or "FARGATE")


def monthly_firings(expression: str, timezone: str) -> float:
    """Average firings a month: a rate exactly; a cron counted over a whole year (matching days x times)."""
    schedule = parse(expression)
    if isinstance(schedule, Rate):
        return HOURS_PER_MONTH * 3600 / schedule.seconds
    start = date(2027, 1, 1)
    days = sum(schedule.matches_day(start + timedelta(days=i)) for i in range(365))
    return days * len(schedule.times) / 12


# -- pricers, one per resource type ------------------------------------------------------------------

Pricer = Callable[[Context, str, dict[str, Any]], Iterator[Line]]


def nat_gateway(ctx: Context, rid: str, props: dict[str, Any]) -> Iterator[Line]:
    yield ctx.line(rid, "idle", "NAT gateway (data processing not included)", "nat-gateway-hour", HOURS_PER_MONTH)


def elastic_ip(ctx: Context, rid: str, props: dict[str, Any]) -> Iterator[Line]:
    yield ctx.line(rid, "idle", "public IPv4 address (Elastic IP)", "public-ipv4-hour", HOURS_PER_MONTH)


def ec2_instance(ctx: Context, rid: str, props: dict[str, Any]) -> Iterator[Line]:
    kind = str(props["InstanceType"])
    yield ctx.line(rid, "idle", f"EC2 {kind}", "ec2-hour", HOURS_PER_MONTH, kind)
    template = _ref(props.get("LaunchTemplate", {}).get("LaunchTemplateId"))
    mappings = ctx.props(template).get("LaunchTemplateData", {}).get("BlockDeviceMappings", []) if template else []
    for mapping in mappings:
        ebs = mapping.get("Ebs", {})
        if ebs.get("VolumeType", "gp3") != "gp3":
            raise Unpriced(f"EBS volume type {ebs.get('VolumeType')}")
        yield ctx.line(rid, "idle", f"EBS gp3 {ebs.get('VolumeSize', 8)} GB", "ebs-gp3-gb-month",
                       float(ebs.get("VolumeSize", 8)))


def load_balancer(ctx: Context, rid: str, props: dict[str, Any]) -> Iterator[Line]:
    yield ctx.line(rid, "idle", "Application Load Balancer", "alb-hour", HOURS_PER_MONTH)
    if props.get("Scheme") == "internet-facing":
        subnets = props.get("Subnets", [])
        # An existing VPC's subnets are a parameter: count the two zones a load balancer needs at least.
        zones = len(subnets) if isinstance(subnets, list) else ALB_MIN_ZONES
        counted = f"{zones}" if isinstance(subnets, list) else f"at least {zones}"
        yield ctx.line(rid, "idle", f"public IPv4 addresses, one per zone ({counted})", "public-ipv4-hour",
                       HOURS_PER_MONTH * zones)
    public = [s for s in ctx.plan.web_services if s.public]
    requests = ctx.usage.requests_per_month * len(public)
    yield ctx.line(rid, "usage", f"LCUs for {requests:,} requests", "alb-lcu-hour",
                   requests / NEW_CONNECTIONS_PER_LCU_HOUR)


def _min_tasks(ctx: Context, rid: str, props: dict[str, Any]) -> int:
    """The scalable target of the service's node owns its count; without one, the desired count does."""
    target = ctx.manifest.one(ctx.manifest[rid].node, "scaling", "AWS::ApplicationAutoScaling::ScalableTarget")
    if target is not None:
        return int(ctx.props(target.logical_id)["MinCapacity"])
    return int(props.get("DesiredCount", 1))


def ecs_service(ctx: Context, rid: str, props: dict[str, Any]) -> Iterator[Line]:
    service = ctx.service(rid)
    task_definition = _ref(props["TaskDefinition"])
    capacity = _capacity(props.get("CapacityProviderStrategy"), props.get("LaunchType"))
    public_ip = props.get("NetworkConfiguration", {}).get("AwsvpcConfiguration", {}).get("AssignPublicIp") == "ENABLED"
    minimum = _min_tasks(ctx, rid, props)
    if minimum:
        yield from ctx.fargate(rid, "idle", task_definition, minimum * HOURS_PER_MONTH, capacity, public_ip,
                               f"{minimum} task(s) always running")
    if service is not None and service.kind == "worker" and service.role == "worker":
        busy = ctx.usage.executions_per_month * ctx.usage.avg_duration / max(1, service.concurrency) / 3600
        yield from ctx.fargate(rid, "usage", task_definition, busy, capacity, public_ip,
                               f"{busy:,.1f} task-hours for executions")


def pipe(ctx: Context, rid: str, props: dict[str, Any]) -> Iterator[Line]:
    worker = ctx.service(rid)
    if worker is None or worker.role != "worker":  # as an own-image service's tasks on ECS (ecs_service)
        raise Unpriced(f"one task per message of {worker.queue if worker else 'its queue'}: their number is "
                       f"not assumed (executions go to the runtime worker)")
    executions = ctx.usage.executions_per_month
    yield ctx.line(rid, "usage", f"{executions:,} messages", "pipes-request", executions)
    target = props["TargetParameters"]["EcsTaskParameters"]
    seconds = max(FARGATE_MINIMUM_SECONDS, ctx.usage.avg_duration + TASK_STARTUP_SECONDS)
    network = target.get("NetworkConfiguration", {}).get("AwsvpcConfiguration", {})
    yield from ctx.fargate(rid, "usage", _ref(target["TaskDefinitionArn"]), executions * seconds / 3600,
                           _capacity(target.get("CapacityProviderStrategy"), target.get("LaunchType")),
                           network.get("AssignPublicIp") == "ENABLED", f"one task per message, {seconds:g} s")


def queue(ctx: Context, rid: str, props: dict[str, Any]) -> Iterator[Line]:
    entry = ctx.manifest[rid]
    if entry.role != "queue" or entry.node.name is None:
        return  # dead-letter queues: billed per request, and no failures are assumed
    runtime = ctx.plan.queue(entry.node.name)
    meter = "sqs-fifo-request" if runtime.fifo else "sqs-request"
    # Each Pipe keeps polling its queue, whether messages come or not.
    pipes = [w for w in ctx.plan.workers
             if w.queue == runtime.name and ctx.manifest.one(service_node(w.name), "dispatch") is not None]
    if pipes:
        count = "" if len(pipes) == 1 else f"{len(pipes)} "
        yield ctx.line(rid, "idle", f"{count}Pipes' {PIPE_POLLERS} long polls, also when empty", meter,
                       len(pipes) * PIPE_POLLERS * HOURS_PER_MONTH * 3600 / LONG_POLL_SECONDS)
    if runtime.name != ctx.plan.runtime_queue:
        return  # other queues: their messages are not assumed
    executions, duration = ctx.usage.executions_per_month, ctx.usage.avg_duration
    if ctx.plan.worker_mode == "once":
        yield ctx.line(rid, "usage", "send, receive, delete per execution", meter, executions * 3)
        return
    workers = [w for w in ctx.plan.workers if w.queue == runtime.name and w.role == "worker"]
    busy = sum(executions * duration / max(1, w.concurrency) / 3600 for w in workers)
    extensions = duration // VISIBILITY_EXTEND_SECONDS
    yield ctx.line(rid, "usage", "send, receive, delete and visibility extensions per execution", meter,
                   executions * (3 + extensions))
    yield ctx.line(rid, "usage", "workers' long polls while running", meter, busy * 3600 / LONG_POLL_SECONDS)


def function(ctx: Context, rid: str, props: dict[str, Any]) -> Iterator[Line]:
    memory_gb = int(props.get("MemorySize", 128)) / 1024
    arch = (props.get("Architectures") or ["x86_64"])[0]
    if ctx.manifest[rid].node == SCHEDULER:
        schedules = [s for s in ctx.plan.schedules if s.enabled]
        invocations = monthly_firings(contract.SWEEP_RATE, "UTC") + sum(
            monthly_firings(s.expression, s.timezone) for s in schedules)
        kind: Kind = "idle"
        what = f"{invocations:,.0f} scheduler and sweeper runs"
        seconds = SCHEDULER_SECONDS
    elif (service := ctx.service(rid)) is not None:
        invocations = ctx.usage.requests_per_month if service.public else 0
        kind, what, seconds = "usage", f"{invocations:,} requests", REQUEST_SECONDS
    else:
        raise Unpriced("a function fbc cost does not know")
    yield ctx.line(rid, kind, f"{what}: requests", "lambda-request", invocations)
    yield ctx.line(rid, kind, f"{what}: {seconds:g} s at {memory_gb * 1024:.0f} MB", "lambda-gb-second",
                   invocations * seconds * memory_gb, arch)


def distribution(ctx: Context, rid: str, props: dict[str, Any]) -> Iterator[Line]:
    """Billed per request and per byte out, nothing while idle; every request to a public web service passes
    through it (caching is off, so the functions are invoked as before)."""
    config = props["DistributionConfig"]
    if config.get("PriceClass") != "PriceClass_100":  # other classes add edges with higher prices
        raise Unpriced(f"price class {config.get('PriceClass', 'PriceClass_All')}")
    requests = ctx.usage.requests_per_month * len(config["Origins"])  # one origin per public web service
    yield ctx.line(rid, "usage", f"{requests:,} HTTPS requests", "cloudfront-https-request", requests)
    gigabytes = requests * RESPONSE_KB / 1_000_000
    yield ctx.line(rid, "usage", f"{gigabytes:,.1f} GB out to viewers", "cloudfront-data-out-gb", gigabytes)


def alarm(ctx: Context, rid: str, props: dict[str, Any]) -> Iterator[Line]:
    metrics = sum("MetricStat" in m for m in props.get("Metrics", [])) or 1
    yield ctx.line(rid, "idle", f"alarm on {metrics} metric(s)", "alarm-metric-month", metrics)


def dashboard(ctx: Context, rid: str, props: dict[str, Any]) -> Iterator[Line]:
    yield ctx.line(rid, "idle", "dashboard", "dashboard-month", 1)


def kms_key(ctx: Context, rid: str, props: dict[str, Any]) -> Iterator[Line]:
    yield ctx.line(rid, "idle", "customer managed key (requests not included)", "kms-key-month", 1)
    if props.get("EnableKeyRotation") is True:
        # AWS bills each of a key's first two rotations $1 a month more, for good: the steady state is priced,
        # and the line says what comes before it (nothing until the first rotation, one version until the second).
        days = int(props.get("RotationPeriodInDays", 365))
        rate = ctx.prices.rate("kms-key-rotation-month")
        yield ctx.line(rid, "idle", f"rotation from the 2nd (day {2 * days}); $0 to day {days}, then ${rate:g}",
                       "kms-key-rotation-month", KMS_BILLED_ROTATIONS)


def database(ctx: Context, rid: str, props: dict[str, Any]) -> Iterator[Line]:
    if props.get("Engine") not in (None, "postgres"):
        raise Unpriced(f"engine {props.get('Engine')}")
    kind = str(props["DBInstanceClass"])
    copies = 2 if props.get("MultiAZ") is True else 1
    deployment = "Multi-AZ" if copies == 2 else "Single-AZ"
    yield ctx.line(rid, "idle", f"RDS PostgreSQL {kind}, {deployment}", "rds-postgres-hour",
                   HOURS_PER_MONTH * copies, kind)
    if props.get("StorageType", "gp3") != "gp3":
        raise Unpriced(f"storage type {props.get('StorageType')}")
    storage = float(props.get("AllocatedStorage", 20))
    yield ctx.line(rid, "idle", f"{storage:g} GB gp3, {deployment}", "rds-gp3-gb-month", storage * copies)
    if props.get("ManageMasterUserPassword"):
        yield ctx.line(rid, "idle", "master password secret (RDS-managed, Secrets Manager)", "secret-month", 1)


def schedule(ctx: Context, rid: str, props: dict[str, Any]) -> Iterator[Line]:
    if props.get("State") == "DISABLED":
        return
    firings = monthly_firings(str(props["ScheduleExpression"]), str(props.get("ScheduleExpressionTimezone", "UTC")))
    yield ctx.line(rid, "idle", f"{firings:,.0f} invocations", "scheduler-invocation", firings)


PRICERS: dict[str, Pricer] = {
    "AWS::EC2::NatGateway": nat_gateway,
    "AWS::EC2::EIP": elastic_ip,
    "AWS::EC2::Instance": ec2_instance,
    "AWS::ElasticLoadBalancingV2::LoadBalancer": load_balancer,
    "AWS::ECS::Service": ecs_service,
    "AWS::Pipes::Pipe": pipe,
    "AWS::SQS::Queue": queue,
    "AWS::Lambda::Function": function,
    "AWS::CloudWatch::Alarm": alarm,
    "AWS::CloudFront::Distribution": distribution,
    "AWS::CloudWatch::Dashboard": dashboard,
    "AWS::KMS::Key": kms_key,
    "AWS::RDS::DBInstance": database,
    "AWS::Scheduler::Schedule": schedule,
}

# Billed by volume we do not model: said in the report instead of priced at zero.
VOLUME: dict[str, str] = {
    "AWS::Logs::LogGroup": "log ingestion ($0.50/GB in us-east-1) and storage depend on log volume",
    "AWS::SNS::Topic": "alert e-mails: the first 1,000 a month are free",
    "AWS::S3::Bucket": "storage ($0.023/GB-month in us-east-1) and requests depend on the volume kept",
}

# No charge of their own (their cost shows up in what uses them). With PRICERS and VOLUME, exactly the types the
# compiler emits (tests/test_manifest.py).
FREE = {
    "AWS::ApplicationAutoScaling::ScalableTarget", "AWS::ApplicationAutoScaling::ScalingPolicy",
    "AWS::CloudFormation::WaitConditionHandle", "AWS::EC2::InternetGateway", "AWS::EC2::LaunchTemplate",
    "AWS::EC2::Route", "AWS::EC2::RouteTable", "AWS::EC2::SecurityGroup", "AWS::EC2::SecurityGroupEgress",
    "AWS::EC2::SecurityGroupIngress", "AWS::EC2::Subnet", "AWS::EC2::SubnetRouteTableAssociation", "AWS::EC2::VPC",
    "AWS::EC2::VPCGatewayAttachment", "AWS::ECS::Cluster", "AWS::ECS::ClusterCapacityProviderAssociations",
    "AWS::ECS::TaskDefinition", "AWS::ElasticLoadBalancingV2::Listener",
    "AWS::ElasticLoadBalancingV2::ListenerRule", "AWS::ElasticLoadBalancingV2::TargetGroup", "AWS::IAM::Role",
    "AWS::Lambda::EventInvokeConfig", "AWS::Lambda::Permission", "AWS::Lambda::Url", "AWS::RDS::DBSubnetGroup",
    "AWS::S3::BucketPolicy", "AWS::SNS::Subscription",
}


# What a template without fbc's record (an older fbc's) can still be priced by: pricers that read only the
# resource's own properties. The rest is listed as not priced.
BY_TYPE_ALONE = {"AWS::EC2::NatGateway", "AWS::EC2::EIP", "AWS::EC2::Instance", "AWS::CloudWatch::Alarm",
                 "AWS::CloudWatch::Dashboard", "AWS::KMS::Key", "AWS::RDS::DBInstance", "AWS::Scheduler::Schedule"}
UNRECORDED = "what it serves is unknown: the template has no fbc record (built by an older fbc, or not by fbc)"
UNNAMED = "what it serves is unknown: the template's fbc record does not name it (added or renamed by hand?)"
# What a pricer raises on properties it cannot read (a hand-edited or drifted template).
UNREADABLE = (KeyError, TypeError, ValueError, AttributeError, IndexError)


def apply_allowances(estimates: list[Estimate]) -> None:
    """AWS's always-free allowances are per account (per organization under AWS Organizations): applied once
    across the estimates given, as stacks of one account. Each allowance covers idle lines first (so
    idle-after-allowances says what idle stacks cost), then usage lines, in the estimates' and templates'
    order."""
    book = estimates[0].prices.book
    slots = [(e, i) for e in estimates for i in range(len(e.lines))]
    slots.sort(key=lambda slot: slot[0].lines[slot[1]].kind != "idle")  # stable: keeps the order otherwise
    names = tuple(e.facts.stack_name for e in estimates)
    for e in estimates:
        e.lines = [replace(line, free=0.0) for line in e.lines]
        e.allowances.clear()
        e.shared_with = tuple(n for n in names if n != e.facts.stack_name)
    for meter, allowance in sorted(book.allowances.items()):
        left = allowance.quantity
        used: dict[int, tuple[float, float]] = {}  # estimate's index -> (quantity, value)
        for e, i in slots:
            line = e.lines[i]
            if line.meter != meter or left <= 0:
                continue
            take = min(left, line.quantity)
            e.lines[i] = replace(line, free=take * line.rate)
            left -= take
            quantity, value = used.get(id(e), (0.0, 0.0))
            used[id(e)] = (quantity + take, value + take * line.rate)
        for e in estimates:
            if id(e) in used:
                e.allowances.append(AllowanceUse(allowance.name, meter, *used[id(e)]))


def read_record(template: dict[str, Any]) -> tuple[Manifest, Facts, bool]:
    """The manifest and facts a template records, and whether it records them (else: empty ones)."""
    try:
        return (*record.read(template), True)
    except record.Unrecorded:
        return Manifest(()), Facts(), False


def estimate_template(template: dict[str, Any], prices: Prices, usage: Usage, manifest: Manifest | None = None,
                      facts: Facts | None = None, allowances: bool = True, strict: bool | None = None,
                      recorded: bool = True) -> Estimate:
    """Price a template: with its manifest and facts (a build's, or the record in its Metadata), or, with
    neither recorded, by resource type alone where that is possible. A resource the manifest does not name
    (added to a deployed template by hand) is priced by type too, or listed as not priced. `allowances` False:
    leave them to the caller (apply_allowances over several stacks). `strict` (default: when the manifest and
    facts are given, a build's): a pricer that cannot read a property is a bug, raised; otherwise the resource
    is listed as not priced (a hand-edited template must not break a report). `recorded` False: the manifest
    given is not the template's own record (said in the reasons)."""
    if strict is None:
        strict = manifest is not None and facts is not None
    if manifest is None or facts is None:
        manifest, facts, recorded = read_record(template)
    ctx = Context(facts, manifest, template, prices, usage)
    result = Estimate(facts, prices, usage)
    resources: dict[str, dict[str, Any]] = template.get("Resources", {})
    for rid in sorted(resources):  # by logical ID, as the template lists them
        kind = str(resources[rid].get("Type", ""))
        if kind in FREE:
            result.free_resources[kind] = result.free_resources.get(kind, 0) + 1
        elif kind in VOLUME:
            result.not_priced.append(NotPriced(rid, kind, VOLUME[kind]))
        elif kind not in PRICERS:
            result.not_priced.append(NotPriced(rid, kind, "no pricer for this resource type"))
        elif rid not in manifest and kind not in BY_TYPE_ALONE:
            result.not_priced.append(NotPriced(rid, kind, UNNAMED if recorded else UNRECORDED))
        else:
            try:
                result.lines += list(PRICERS[kind](ctx, rid, ctx.props(rid)))
            except Unpriced as exc:
                result.not_priced.append(NotPriced(rid, kind, str(exc)))
            except UNREADABLE as exc:
                if strict:  # fbc's own build: a pricer that cannot read it is a bug
                    raise
                result.not_priced.append(NotPriced(rid, kind, f"its properties are not ones fbc reads "
                                                              f"({type(exc).__name__}: {exc})"))
    for cluster in sorted(r for r, v in resources.items() if v.get("Type") == "AWS::ECS::Cluster"):
        settings = ctx.props(cluster).get("ClusterSettings", [])
        if {"Name": "containerInsights", "Value": "enabled"} in settings:
            result.not_priced.append(NotPriced(cluster, "AWS::ECS::Cluster", "Container Insights: metrics and "
                                               "performance log events per task, by volume"))
    if facts.external_database:
        result.not_priced.append(NotPriced("(external database)", "-", "the external database is not in this stack"))
    if allowances:
        apply_allowances([result])
    return result


def estimate(compiled: Compiled, prices: Prices, usage: Usage, allowances: bool = True) -> Estimate:
    return estimate_template(json.loads(compiled.built.body), prices, usage, compiled.manifest,
                             record.facts(compiled.plan), allowances)
