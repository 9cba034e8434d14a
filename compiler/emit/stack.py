"""The template under construction, and what generators hand to the ones after them.

Generators run in the fixed order of emit.GENERATORS; each reads the plan and the references earlier ones
left here (network, database, topic, queues, tasks), adds resources, and sets its own references.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from troposphere import AWSObject, GetAtt, Output, Parameter, Ref, Sub, Template, iam, logs

from ..plan import Plan
from .manifest import Entry, Node, Role

MAX_RESOURCES = 500


class LimitError(ValueError):
    """The template breaks a CloudFormation quota; the message says which and what to do."""


@dataclass
class NetworkRefs:
    vpc_id: Any
    task_subnets: Any  # where tasks and in-VPC Lambdas run (public ones when decisions.network.tasks_public)
    public_subnets: Any  # for a load balancer
    database_subnets: Any | None = None


@dataclass
class DatabaseRefs:
    # ECS: plain environment and Secrets (ValueFrom); Lambda: environment only (it reads secrets itself).
    container_env: list[tuple[str, Any]]
    container_secrets: list[tuple[str, Any]]
    lambda_env: list[tuple[str, Any]]
    # IAM statements: to inject secrets into containers (execution role), to read them at run time (Lambda),
    # and what a container reads itself at run time (task role).
    inject_statements: list[dict[str, Any]]
    read_statements: list[dict[str, Any]]
    client_security_group: Any | None = None  # members may reach the database
    container_read_statements: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class QueueRefs:
    queue: Any  # the AWS::SQS::Queue resource
    dead_letter: Any


@dataclass
class Stack:
    plan: Plan
    template: Template = field(default_factory=Template)
    network: NetworkRefs | None = None
    database: DatabaseRefs | None = None
    alert_topic: Any | None = None
    key: Any | None = None  # the stack's customer key (standard): alerts and log groups
    queues: dict[str, QueueRefs] = field(default_factory=dict)
    cluster: Any | None = None
    capacity_providers: str | None = None  # logical ID of the cluster's capacity provider associations
    task_definitions: dict[str, Any] = field(default_factory=dict)  # service name -> AWS::ECS::TaskDefinition
    task_roles: dict[str, list[Any]] = field(default_factory=dict)  # service name -> roles a Pipe passes
    task_security_group: Any | None = None
    ecs_services: dict[str, Any] = field(default_factory=dict)
    functions: dict[str, Any] = field(default_factory=dict)  # web services served from Lambda
    load_balancer: Any | None = None
    target_groups: dict[str, Any] = field(default_factory=dict)
    entries: list[Entry] = field(default_factory=list)  # the manifest, one entry per resource added

    def add(self, resource: AWSObject, *, node: Node, role: Role) -> Any:
        """Add a resource, saying which plan node it serves and what it does there (emit.manifest)."""
        if len(self.template.resources) >= MAX_RESOURCES:
            raise LimitError(f"the application needs more than {MAX_RESOURCES} resources (the limit was reached at "
                             f"{resource.title}); CloudFormation allows {MAX_RESOURCES} per stack: split it into "
                             f"several specs, one stack each")
        added = self.template.add_resource(resource)
        self.entries.append(Entry(resource.title, resource.resource_type, node, role))
        return added

    def parameter(self, logical_id: str, **props: Any) -> Parameter:
        if logical_id in self.template.parameters:
            return self.template.parameters[logical_id]
        return self.template.add_parameter(Parameter(logical_id, **props))

    def output(self, logical_id: str, value: Any, description: str) -> None:
        self.template.add_output(Output(logical_id, Value=value, Description=description))

    def name(self, suffix: str = "") -> str:
        """A physical name prefix: <app>-<environment>[-suffix]."""
        return f"{self.plan.stack_name}-{suffix}" if suffix else self.plan.stack_name


def log_group(stack: Stack, logical_id: str, node: Node) -> Any:
    """A log group with the profile's retention, under the stack's key when it has one. Its name is CloudWatch's
    choice, so a replacement never collides; it is only replaced if that changes. On stack delete production
    keeps its logs (they still expire by retention, so the cost stays bounded); other environments delete
    them with the stack."""
    props: dict[str, Any] = {"RetentionInDays": stack.plan.decisions.log_retention_days}
    if stack.key is not None:
        props["KmsKeyId"] = GetAtt(stack.key, "Arn")
    group = stack.add(logs.LogGroup(logical_id, DeletionPolicy="Retain" if stack.plan.production else "Delete",
                                    UpdateReplacePolicy="Delete", **props), node=node, role="logs")
    if stack.key is None:
        skip_checks(group, ("CKV_AWS_158", "Encrypted by CloudWatch Logs' own key: a customer key costs USD 1/month "
                                           "and would break this profile's zero idle cost."))
    return group


def arn(service: str, resource: str) -> Sub:
    """An ARN in this stack's partition, region and account."""
    return Sub(f"arn:${{AWS::Partition}}:{service}:${{AWS::Region}}:${{AWS::AccountId}}:{resource}")


def skip_checks(resource: AWSObject, *reasons: tuple[str, str]) -> None:
    """Record checkov suppressions on the resource that carries the trade-off: (check ID, why it is right
    here). `fbc build` counts them and `fbc diff` shows added ones as security changes, so each needs a
    reason a reviewer can judge."""
    metadata = dict(getattr(resource, "Metadata", None) or {})
    skips = list(metadata.get("checkov", {}).get("skip", []))
    skips += [{"id": check, "comment": comment} for check, comment in reasons]
    metadata["checkov"] = {"skip": sorted(skips, key=lambda s: s["id"])}
    resource.Metadata = metadata


def ignore_lint(resource: AWSObject, rule: str) -> None:
    """Tell cfn-lint to skip one rule on one resource, where its data is stricter than AWS (say why at the
    call)."""
    metadata = dict(getattr(resource, "Metadata", None) or {})
    config = metadata.setdefault("cfn-lint", {}).setdefault("config", {})
    config["ignore_checks"] = sorted({*config.get("ignore_checks", []), rule})
    resource.Metadata = metadata


def statement(sid: str, actions: list[str], resources: list[Any], **extra: Any) -> dict[str, Any]:
    return {"Sid": sid, "Effect": "Allow", "Action": sorted(actions), "Resource": resources, **extra}


def policy_document(statements: list[dict[str, Any]]) -> dict[str, Any]:
    return {"Version": "2012-10-17", "Statement": statements}


# Services that state which account they act for, so their trust policies can require it (confused deputy).
_SOURCE_ACCOUNT_AWARE = {"ecs-tasks.amazonaws.com", "scheduler.amazonaws.com", "pipes.amazonaws.com"}


def assume(service: str) -> dict[str, Any]:
    trust: dict[str, Any] = {"Effect": "Allow", "Principal": {"Service": service}, "Action": "sts:AssumeRole"}
    if service in _SOURCE_ACCOUNT_AWARE:
        trust["Condition"] = {"StringEquals": {"aws:SourceAccount": Ref("AWS::AccountId")}}
    return policy_document([trust])


def role(stack: Stack, logical_id: str, node: Node, service: str, statements: list[dict[str, Any]]) -> Any:
    """An IAM role for one AWS service with one inline policy; no managed policies, no wildcards added."""
    props: dict[str, Any] = {"AssumeRolePolicyDocument": assume(service)}
    if statements:
        props["Policies"] = [iam.Policy(PolicyName="least-privilege", PolicyDocument=policy_document(statements))]
    return stack.add(iam.Role(logical_id, **props), node=node, role="permissions")
