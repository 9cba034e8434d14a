"""A change of profile on a deployed stack: what it deletes or replaces (the database and its final snapshot,
queues and the messages they hold, the load balancer and its DNS name) and what must be migrated by hand, so
that diff and apply refuse it unless asked (--change-profile). The deployed profile is the stack's `profile`
tag (plan.tags: the stack and, through CloudFormation, its resources carry it)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from .aws import Aws, StackInfo, stack_tags
from .diff import diff_templates

_DATABASE, _QUEUE, _BALANCER = "AWS::RDS::DBInstance", "AWS::SQS::Queue", "AWS::ElasticLoadBalancingV2::LoadBalancer"


@dataclass(frozen=True)
class Switch:
    stack: str
    old: str
    new: str
    lines: tuple[str, ...]  # what it deletes or replaces, then what to migrate by hand

    def refusal(self) -> str:
        return (f"{self.stack} runs the {self.old} profile; this would switch it to {self.new}, deleting or "
                f"replacing what is listed above: pass --change-profile to do so")


def profile_switch(aws: Aws, stack_name: str, new: str, template: dict[str, Any],
                   deployed: StackInfo) -> Switch | None:
    """The switch from the deployed stack's profile to `new`; None when it is the same (or untagged)."""
    old = stack_tags(aws, deployed.stack_id).get("profile")
    if old is None or old == new:
        return None
    before = aws.cloudformation.template(deployed.stack_id)
    diff = diff_templates(before, template)
    gone = sorted(c.logical_id for c in diff.resources
                  if c.action == "Remove" or c.replacement in ("True", "Conditional"))
    physical = {r.logical_id: r.physical_id for r in aws.cloudformation.resources(deployed.stack_id)}
    kinds = {name: str(r.get("Type")) for name, r in before.get("Resources", {}).items()}
    after = {str(r.get("Type")) for r in template.get("Resources", {}).values()}
    lines = [f"switching {stack_name} from the {old} profile to {new}:"]
    for name in gone:
        lines += _gone(aws, name, kinds.get(name, ""), physical.get(name, ""))
    others = [name for name in gone if kinds.get(name) not in (_DATABASE, _QUEUE, _BALANCER)]
    if others:
        more = " more" if len(others) < len(gone) else ""
        lines.append(f"  removes or replaces {len(others)}{more} resource(s): {', '.join(others[:8])}"
                     + (", ..." if len(others) > 8 else ""))
    lines.append("to migrate by hand:")
    lines += _by_hand(set(kinds.values()), after, any(kinds.get(n) == _QUEUE for n in gone))
    return Switch(stack_name, old, new, tuple(lines))


def _gone(aws: Aws, name: str, kind: str, physical: str) -> list[str]:
    if kind == _DATABASE:
        return [f"  deletes the database {physical or name} ({name}); CloudFormation first takes its final "
                f"snapshot (DeletionPolicy Snapshot), named by CloudFormation after the stack: aws rds "
                f"describe-db-snapshots --db-instance-identifier {physical or name} --snapshot-type manual"]
    if kind == _QUEUE:
        held = _attribute(aws, "sqs", "get_queue_attributes", "ApproximateNumberOfMessages", QueueUrl=physical,
                          AttributeNames=["ApproximateNumberOfMessages"])
        return [f"  deletes the queue {physical.rsplit('/', 1)[-1] or name} ({name}) with "
                f"{held if held is not None else 'an unknown number of'} message(s) in it"]
    if kind == _BALANCER:
        dns = _attribute(aws, "elbv2", "describe_load_balancers", "DNSName", LoadBalancerArns=[physical])
        return [f"  deletes the load balancer {dns or physical or name} ({name}): that DNS name stops answering"]
    return []


def _attribute(aws: Aws, service: str, call: str, key: str, **kwargs: Any) -> str | None:
    """One value AWS knows about a resource, or None when it cannot be read (the line says so)."""
    try:
        answer = aws.call(getattr(aws.client(service), call), **kwargs)
    except (ClientError, BotoCoreError):
        return None
    item = answer.get("Attributes") or (answer.get("LoadBalancers") or [{}])[0]
    value = item.get(key)
    return None if value is None else str(value)


def _by_hand(before: set[str], after: set[str], queues_go: bool) -> list[str]:
    said = []
    if _DATABASE in before and _DATABASE not in after:
        said.append("  the data: restore the final snapshot (or pg_dump the database before applying) into your "
                    "external PostgreSQL, and put its URL in the DatabaseUrlParameter SSM parameter")
    if _DATABASE in after and _DATABASE not in before:
        said.append("  the data: copy it from the external PostgreSQL into the new RDS database after applying "
                    "(pg_dump | pg_restore); the runtime reads the new one from then on")
    if queues_go:
        said.append("  the messages: let the workers drain the queues first; what is left is deleted with them")
    if _BALANCER in before and _BALANCER not in after:
        said.append("  the clients: move them (DNS records, API users) from the load balancer's DNS name to the "
                    "function URL in the stack's outputs after applying")
    if _BALANCER in after and _BALANCER not in before:
        said.append("  the clients: move them from the function URLs to the load balancer's URL in the stack's "
                    "outputs after applying; the function URLs are deleted")
    return said or ["  nothing beyond what is listed above"]
