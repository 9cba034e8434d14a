"""A resolved profile as explicit decisions: what every emitter, `fbc up`, `fbc cost` and `fbc graph` read.

A profile's settings are knobs; several of them decide more than their name says (alarms: full also brings the
customer key that encrypts alerts and logs; a dashboard also turns on Container Insights; a new VPC without NAT
puts tasks in public subnets). `decide` says each consequence once, as a typed field, and refuses here, at the
setting to change, the combinations AWS cannot run. Nothing downstream reads the profile itself.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from . import contract
from .diagnostics import Diagnostic

if TYPE_CHECKING:
    from .profiles import ProfileSpec

Nat = Literal["gateway-per-az", "single-gateway", "instance", "none"]
Capacity = Literal["FARGATE", "FARGATE_SPOT"]


@dataclass(frozen=True)
class NetworkDecisions:
    vpc: Literal["new", "existing"]
    az_count: int  # a new VPC's availability zones
    nat: Nat  # how private subnets reach the internet (a new VPC); none: there are no private subnets
    tasks_public: bool  # tasks run in public subnets with public IPs (an existing VPC, or a new one without NAT)


@dataclass(frozen=True)
class RdsDecisions:
    instance_class: str
    multi_az: bool
    performance_insights: bool
    deletion_protection: bool
    backup_retention_days: int


@dataclass(frozen=True)
class Decisions:
    network: NetworkDecisions
    rds: RdsDecisions | None  # None: an external database, its URL from SSM or Secrets Manager
    web_serving: Literal["load-balancer", "function-url"]
    worker_dispatch: Literal["autoscaled-service", "pipe"]
    worker_capacity: Capacity  # workers' Fargate capacity provider; web services always run on FARGATE
    # Runtime functions (the scheduler, an API on a function URL) join the VPC: the database is private there
    # (RDS), and the NAT takes them on to AWS APIs.
    functions_in_vpc: bool
    all_alarms: bool  # every alarm; otherwise only dead-letter depth (free tier)
    # A customer KMS key (USD 1/month) encrypts the alert topic and the log groups: CloudWatch cannot publish
    # to a topic under the AWS-managed SNS key. Comes with all alarms (standard); ultra keeps no key.
    customer_key: bool
    dashboard: bool
    container_insights: bool  # the dashboard's task-level metrics
    log_retention_days: int

    @property
    def worker_mode(self) -> str:
        """How the runtime consumes executions: poll (a long-polling service) or once (a task per message)."""
        return contract.WORKER_MODES[self.worker_dispatch]

    @property
    def web_on_ecs(self) -> bool:
        """Web services run as ECS services behind the load balancer (else as Lambda functions)."""
        return self.web_serving == "load-balancer"

    def capacity(self, kind: str) -> Capacity:
        return self.worker_capacity if kind == "worker" else "FARGATE"


def refusals(spec: ProfileSpec) -> list[Diagnostic]:
    """Settings that validate one by one but cannot work together on AWS, each at the setting to change. Every
    other combination builds a stack that passes the rules of tests/aws_rules.py (a property test holds it)."""
    network, database, web = spec.network, spec.database, spec.web
    found: list[Diagnostic] = []
    if network.vpc == "existing" and network.nat != "none":
        found.append(Diagnostic("an existing VPC is used as it is: its subnets must be public (nat: none); fbc "
                                "adds no NAT to a VPC it did not create", ("spec", "network", "nat")))
    if network.vpc == "existing" and database.mode == "rds":
        found.append(Diagnostic("rds needs the database subnets of a VPC fbc creates (network.vpc: new); with "
                                "an existing VPC use mode: external", ("spec", "database", "mode")))
    if network.vpc == "new" and network.nat == "none" and database.mode == "rds":
        found.append(Diagnostic("rds with network.nat: none: the scheduler function must join the VPC to reach "
                                "the database and would then have no route to SQS or Secrets Manager; choose a "
                                "nat or mode: external", ("spec", "database", "mode")))
    if network.vpc == "new" and network.az_count < 2:
        needs = [what for what, used in (("an RDS subnet group", database.mode == "rds"),
                                         ("an Application Load Balancer", web.serving == "load-balancer")) if used]
        if needs:
            found.append(Diagnostic(f"{' and '.join(needs)} need subnets in at least two availability zones; "
                                    f"use azCount: 2", ("spec", "network", "azCount")))
    return found


def decide(spec: ProfileSpec) -> Decisions:
    """The decisions of a profile that `refusals` accepted (profiles.resolve refuses the others, located)."""
    assert not refusals(spec), refusals(spec)
    network, database, monitoring = spec.network, spec.database, spec.monitoring
    rds = None if database.mode == "external" else RdsDecisions(
        instance_class=database.instance_class, multi_az=database.multi_az,
        performance_insights=database.performance_insights, deletion_protection=database.deletion_protection,
        backup_retention_days=database.backup_retention_days)
    private_subnets = network.vpc == "new" and network.nat != "none"
    return Decisions(
        network=NetworkDecisions(vpc=network.vpc, az_count=network.az_count, nat=network.nat,
                                 tasks_public=not private_subnets),
        rds=rds, web_serving=spec.web.serving, worker_dispatch=spec.workers.dispatch,
        worker_capacity=spec.workers.capacity, functions_in_vpc=rds is not None and private_subnets,
        all_alarms=monitoring.alarms == "full", customer_key=monitoring.alarms == "full",
        dashboard=monitoring.dashboard, container_insights=monitoring.dashboard,
        log_retention_days=monitoring.log_retention_days)
