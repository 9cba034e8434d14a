"""Security changes between two templates' resources, for fbc diff and apply: IAM statements, security-group
rules, public invoke permissions and checkov suppressions, each added (broadens) or removed (narrows)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Literal


@dataclass(frozen=True)
class SecurityChange:
    kind: Literal["iam", "network", "invoke", "checkov"]
    broadens: bool  # False: narrows
    resource: str
    detail: str
    # checkov suppressions only: the check, its reason in the new template (the old one when removed) and,
    # when only the reason changed, the reason before.
    check: str | None = None
    comment: str | None = None
    was: str | None = None


def _statements(resources: dict[str, Any]) -> set[tuple[str, str]]:
    out = set()
    for logical_id, resource in resources.items():
        props = resource.get("Properties", {})
        if resource["Type"] == "AWS::IAM::Role":
            for policy in props.get("Policies", []):
                for st in _as_list(policy.get("PolicyDocument", {}).get("Statement", [])):
                    for action in _as_list(st.get("Action", [])):
                        for target in _as_list(st.get("Resource", [])):
                            condition = f" when {_compact(st['Condition'])}" if "Condition" in st else ""
                            out.add((logical_id, f"{st.get('Effect', 'Allow')} {action} on {_compact(target)}"
                                                 f"{condition}"))
            for arn in _as_list(props.get("ManagedPolicyArns", [])):
                out.add((logical_id, f"managed policy {_compact(arn)}"))
            for st in _as_list(props.get("AssumeRolePolicyDocument", {}).get("Statement", [])):
                out.add((logical_id, f"trusts {_compact(st.get('Principal'))}"))
    return out


def _rules(resources: dict[str, Any]) -> set[tuple[str, str]]:
    out = set()

    def describe(direction: str, rule: dict[str, Any]) -> str:
        peer = (rule.get("CidrIp") or rule.get("CidrIpv6") or rule.get("SourceSecurityGroupId")
                or rule.get("DestinationSecurityGroupId") or rule.get("DestinationPrefixListId"))
        ports = f"{rule.get('FromPort', 'all')}-{rule.get('ToPort', 'all')}"
        return f"{direction} {rule.get('IpProtocol')} {ports} {'from' if direction == 'ingress' else 'to'} " \
               f"{_compact(peer)}"

    for logical_id, resource in resources.items():
        props = resource.get("Properties", {})
        kind = resource["Type"]
        if kind == "AWS::EC2::SecurityGroup":
            for rule in props.get("SecurityGroupIngress", []):
                out.add((logical_id, describe("ingress", rule)))
            for rule in props.get("SecurityGroupEgress", []):
                out.add((logical_id, describe("egress", rule)))
        elif kind in ("AWS::EC2::SecurityGroupIngress", "AWS::EC2::SecurityGroupEgress"):
            direction = "ingress" if kind.endswith("Ingress") else "egress"
            out.add((_compact(props.get("GroupId")), describe(direction, props)))
    return out


def _invokes(resources: dict[str, Any]) -> set[tuple[str, str]]:
    return {(logical_id, f"{r['Properties'].get('Action')} by {r['Properties'].get('Principal')}")
            for logical_id, r in resources.items() if r["Type"] == "AWS::Lambda::Permission"}


def _suppressions(resources: dict[str, Any]) -> dict[tuple[str, str], str]:
    """checkov suppressions in Metadata (checkov: skip: [{id, comment}]): (logical ID, check ID) -> reason."""
    out = {}
    for logical_id, resource in resources.items():
        metadata = resource.get("Metadata")
        checkov = metadata.get("checkov") if isinstance(metadata, dict) else None
        for skip in _as_list(checkov.get("skip", [])) if isinstance(checkov, dict) else []:
            if isinstance(skip, dict) and skip.get("id"):
                out[(logical_id, str(skip["id"]))] = str(skip.get("comment", ""))
    return out


def _suppression_changes(old: dict[str, Any], new: dict[str, Any]) -> list[SecurityChange]:
    """A suppression added, or whose reason changed, broadens (a reviewer judges the reason); one removed
    narrows."""
    before, after = _suppressions(old), _suppressions(new)
    changes = [SecurityChange("checkov", True, r, f"{c}: {after[r, c]}", c, after[r, c])
               for r, c in sorted(after.keys() - before.keys())]
    changes += [SecurityChange("checkov", True, r, f"{c}: {after[r, c]} (reason was: {before[r, c]})", c,
                               after[r, c], before[r, c])
                for r, c in sorted(after.keys() & before.keys()) if after[r, c] != before[r, c]]
    changes += [SecurityChange("checkov", False, r, f"{c}: {before[r, c]}", c, before[r, c])
                for r, c in sorted(before.keys() - after.keys())]
    return changes


def security_changes(old: dict[str, Any], new: dict[str, Any]) -> list[SecurityChange]:
    changes = []
    for kind, extract in (("iam", _statements), ("network", _rules), ("invoke", _invokes)):
        before, after = extract(old), extract(new)
        changes += [SecurityChange(kind, True, r, d) for r, d in sorted(after - before)]  # type: ignore[arg-type]
        changes += [SecurityChange(kind, False, r, d) for r, d in sorted(before - after)]  # type: ignore[arg-type]
    return changes + _suppression_changes(old, new)


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _compact(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, dict) and list(value) == ["Ref"]:
        return f"Ref {value['Ref']}"
    if isinstance(value, dict) and list(value) == ["Fn::GetAtt"]:
        return f"GetAtt {'.'.join(value['Fn::GetAtt'])}"
    return json.dumps(value, sort_keys=True, separators=(",", ":"))
