"""Template diff, offline: resources added, removed and modified with property paths, replacement markers,
security changes (security.py: IAM statements, security-group rules, public invoke permissions, checkov
suppressions) and parameter changes.

`fbc diff` and `fbc apply` both use it, against a stack with its parameter values too (what the parameters sent
would change, and in which resources), and with the replacement verdicts of a change set: both verdicts count.
Replacement offline comes from the CloudFormation resource schemas' createOnlyProperties, as cfn-lint ships
them.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field, replace
from typing import Any, Literal, Protocol

from .security import SecurityChange, security_changes

Replacement = Literal["True", "False", "Conditional"]
Action = Literal["Add", "Remove", "Modify"]
_ACTIONS: dict[str, Action] = {"Add": "Add", "Remove": "Remove", "Modify": "Modify"}  # a change set's may be others


@dataclass(frozen=True)
class PropertyChange:
    path: str  # Properties.ContainerDefinitions[0].Image
    old: Any
    new: Any
    replaces: bool


@dataclass(frozen=True)
class ResourceChange:
    logical_id: str
    resource_type: str
    action: Action
    properties: tuple[PropertyChange, ...] = ()
    replacement: Replacement = "False"


@dataclass(frozen=True)
class ParameterChange:
    name: str
    old: Any
    new: Any


@dataclass(frozen=True)
class ValueChange:
    """A parameter's value in the deployed stack (None: it has none) and the one apply would deploy."""

    name: str
    old: str | None
    new: str
    rollback: tuple[str, str] | None = None  # (old tag, new tag): an image back to an older version tag


@dataclass
class TemplateDiff:
    resources: list[ResourceChange] = field(default_factory=list)
    security: list[SecurityChange] = field(default_factory=list)
    parameters: list[ParameterChange] = field(default_factory=list)  # declarations (a Default, a pattern)
    outputs: list[ParameterChange] = field(default_factory=list)
    values: list[ValueChange] = field(default_factory=list)  # parameter values, against a deployed stack

    @property
    def empty(self) -> bool:
        return not (self.resources or self.security or self.parameters or self.outputs or self.values)

    @property
    def risky(self) -> list[str]:
        """Why a person should confirm: removals, replacements, broader access. A new checkov suppression is
        shown (a reviewer judges its reason in the diff) but grants nothing by itself, and CloudFormation does
        not even update a resource whose Metadata alone changed: what it accepts comes with a property change,
        which is judged on its own."""
        reasons = [f"removes {c.logical_id}" for c in self.resources if c.action == "Remove"]
        reasons += [f"replaces {c.logical_id}" for c in self.resources if c.replacement in ("True", "Conditional")]
        reasons += [f"broadens {s.kind} access: {s.resource} {s.detail}" for s in self.security
                    if s.broadens and s.kind != "checkov"]
        reasons += [f"rolls {v.name} back from tag {v.rollback[0]} to {v.rollback[1]}" for v in self.values
                    if v.rollback]
        return reasons


def _create_only(resource_type: str) -> set[str]:
    """Top-level properties whose change replaces the resource."""
    try:
        from cfnlint.schema import PROVIDER_SCHEMA_MANAGER
    except ImportError:  # pragma: no cover - cfn-lint is a dependency; without it, no offline verdicts
        return set()
    try:
        schema = PROVIDER_SCHEMA_MANAGER.get_resource_schema("us-east-1", resource_type).schema
    except Exception:  # an unknown type: nothing to say offline
        return set()
    return {p.split("/")[2] for p in schema.get("createOnlyProperties", []) if p.startswith("/properties/")}


def _walk(old: Any, new: Any, path: str) -> list[tuple[str, Any, Any]]:
    if old == new:
        return []
    if isinstance(old, dict) and isinstance(new, dict) and not _intrinsic(old) and not _intrinsic(new):
        out = []
        for key in sorted(old.keys() | new.keys()):
            out += _walk(old.get(key, _MISSING), new.get(key, _MISSING), f"{path}.{key}" if path else key)
        return out
    if isinstance(old, list) and isinstance(new, list):
        if len(old) == len(new):
            out = []
            for i, (a, b) in enumerate(zip(old, new, strict=True)):
                out += _walk(a, b, f"{path}[{i}]")
            return out
        # Items added or removed (IAM statements, rules): list them, not the whole list twice.
        return ([(f"{path}[{i}]", _MISSING, item) for i, item in enumerate(new) if item not in old]
                + [(f"{path}[{i}]", item, _MISSING) for i, item in enumerate(old) if item not in new])
    return [(path, old, new)]


class _Missing:
    def __repr__(self) -> str:
        return "(absent)"


_MISSING: Any = _Missing()


def _intrinsic(value: dict[str, Any]) -> bool:
    return len(value) == 1 and next(iter(value)).startswith(("Fn::", "Ref"))


def _resource_changes(old: dict[str, Any], new: dict[str, Any]) -> list[ResourceChange]:
    changes = []
    for logical_id in sorted(old.keys() | new.keys()):
        before, after = old.get(logical_id), new.get(logical_id)
        if before is None:
            assert after is not None
            changes.append(ResourceChange(logical_id, after["Type"], "Add"))
        elif after is None:
            changes.append(ResourceChange(logical_id, before["Type"], "Remove"))
        elif before != after:
            if before["Type"] != after["Type"]:
                changes.append(ResourceChange(logical_id, after["Type"], "Modify", replacement="True"))
                continue
            create_only = _create_only(after["Type"])
            props = []
            for path, a, b in _walk(before, after, ""):
                props.append(PropertyChange(path, a, b, replaces=_top(path) in create_only))
            replaces: Replacement = "True" if any(p.replaces for p in props) else "False"
            changes.append(ResourceChange(logical_id, after["Type"], "Modify", tuple(props), replaces))
    return changes


def _top(path: str) -> str:
    """Properties.ContainerDefinitions[0].Image -> ContainerDefinitions; "" outside Properties."""
    return path.split(".")[1].split("[")[0] if path.startswith("Properties.") else ""


def _named(old: dict[str, Any], new: dict[str, Any]) -> list[ParameterChange]:
    """Parameters or outputs: added and removed whole, changed by the fields that changed."""
    out = []
    for name in sorted(old.keys() | new.keys()):
        before, after = old.get(name, _MISSING), new.get(name, _MISSING)
        if before is _MISSING or after is _MISSING:
            out.append(ParameterChange(name, before, after))
        elif before != after:
            out += [ParameterChange(f"{name}.{path}", a, b) for path, a, b in _walk(before, after, "")]
    return out


def diff_templates(old: dict[str, Any] | None, new: dict[str, Any]) -> TemplateDiff:
    old = old or {}
    return TemplateDiff(
        resources=_resource_changes(old.get("Resources", {}), new.get("Resources", {})),
        security=security_changes(old.get("Resources", {}), new.get("Resources", {})),
        parameters=_named(old.get("Parameters", {}), new.get("Parameters", {})),
        outputs=_named(old.get("Outputs", {}), new.get("Outputs", {})),
    )


def with_values(diff: TemplateDiff, template: dict[str, Any], values: list[ValueChange]) -> TemplateDiff:
    """The parameter values that change, and what they change in `template`'s resources: every property that
    refers to one (Ref, or ${Name} in a Fn::Sub) changes with it, and replaces its resource when it is
    create-only (a security group's VpcId). A change set says the same on AWS; an emulator may say nothing."""
    changed = {v.name: v for v in values}
    by_id = {c.logical_id: c for c in diff.resources}
    for logical_id, resource in sorted(template.get("Resources", {}).items()):
        prior = by_id.get(logical_id)
        if prior is not None and prior.action != "Modify":
            continue
        create_only = _create_only(resource["Type"])
        props = tuple(PropertyChange(f"{path} ({how})", _MISSING if changed[name].old is None else changed[name].old,
                                     changed[name].new, _top(path) in create_only)
                      for path, name, how in _uses(resource.get("Properties", {}), "Properties", changed))
        if props:
            props = (prior.properties if prior else ()) + props
            verdict: Replacement = "True" if any(p.replaces for p in props) else (
                prior.replacement if prior else "False")
            by_id[logical_id] = ResourceChange(logical_id, resource["Type"], "Modify", props, verdict)
    return TemplateDiff(sorted(by_id.values(), key=lambda c: c.logical_id), diff.security, diff.parameters,
                        diff.outputs, values)


def _uses(value: Any, path: str, names: dict[str, Any]) -> Iterator[tuple[str, str, str]]:
    """(property path, parameter, how) for each reference to one of `names` under `value`."""
    if isinstance(value, dict):
        if list(value) == ["Ref"] and value["Ref"] in names:
            yield path, value["Ref"], f"Ref {value['Ref']}"
            return
        if list(value) == ["Fn::Sub"]:
            text = value["Fn::Sub"][0] if isinstance(value["Fn::Sub"], list) else value["Fn::Sub"]
            yield from ((path, name, f"${{{name}}}") for name in sorted(names)
                        if isinstance(text, str) and f"${{{name}}}" in text)
        for key, item in value.items():
            yield from _uses(item, f"{path}.{key}" if not key.startswith(("Fn::", "Ref")) else path, names)
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield from _uses(item, f"{path}[{i}]", names)


class SetChange(Protocol):
    """A change set's resource change (aws.Change), as far as the diff reads it."""

    @property
    def action(self) -> str: ...
    @property
    def logical_id(self) -> str: ...
    @property
    def resource_type(self) -> str: ...
    @property
    def replacement(self) -> Replacement | None: ...


_STRENGTH = {"False": 0, "Conditional": 1, "True": 2}


def with_change_set(diff: TemplateDiff, changes: Iterable[SetChange]) -> TemplateDiff:
    """Both verdicts count: per resource, the stronger of the offline table's and the change set's (either may
    miss what the other sees: an emulator's change set says nothing, the table knows no conditions). A
    resource only the change set lists is added as it says."""
    by_id = {c.logical_id: c for c in diff.resources}
    for change in changes:
        verdict: Replacement = change.replacement or "False"
        prior, action = by_id.get(change.logical_id), _ACTIONS.get(change.action)
        if prior is None and action is not None:
            by_id[change.logical_id] = ResourceChange(change.logical_id, change.resource_type, action,
                                                      replacement=verdict if action == "Modify" else "False")
        elif prior is not None and _STRENGTH.get(verdict, 0) > _STRENGTH[prior.replacement]:
            by_id[change.logical_id] = replace(prior, replacement=verdict)
    return TemplateDiff(sorted(by_id.values(), key=lambda c: c.logical_id), diff.security, diff.parameters,
                        diff.outputs, diff.values)


# --- rendering ------------------------------------------------------------------------------------------------

def use_colour(stream: Any = None) -> bool:
    stream = stream or sys.stdout
    return "NO_COLOR" not in os.environ and hasattr(stream, "isatty") and stream.isatty()


def _paint(text: str, code: str, colour: bool) -> str:
    return f"\033[{code}m{text}\033[0m" if colour else text


def _value(value: Any) -> str:
    if value is _MISSING:
        return "(absent)"
    text = json.dumps(value, sort_keys=True, separators=(",", ":"))
    return text if len(text) <= 100 else text[:97] + "..."


def render_text(diff: TemplateDiff, colour: bool = False) -> str:
    if diff.empty:
        return "no differences"
    marks = {"Add": ("+", "32"), "Remove": ("-", "31"), "Modify": ("~", "33")}
    lines = []
    if diff.resources:
        lines.append("Resources")
        for change in diff.resources:
            sign, code = marks[change.action]
            tag = {"True": " [replace]", "Conditional": " [may replace]"}.get(change.replacement, "")
            lines.append(_paint(f"{sign} {change.logical_id} ({change.resource_type}){tag}", code, colour))
            for prop in change.properties:
                flag = " (replaces)" if prop.replaces else ""
                lines.append(f"    {prop.path}: {_value(prop.old)} -> {_value(prop.new)}{flag}")
    if diff.security:
        lines.append("Security changes")
        for sec in diff.security:
            sign, code = ("+", "31") if sec.broadens else ("-", "32")
            what = "broadens" if sec.broadens else "narrows"
            lines.append(_paint(f"{sign} {_security_line(sec, what)}", code, colour))
    for title, items in (("Parameters", diff.parameters), ("Outputs", diff.outputs)):
        if items:
            lines.append(title)
            for item in items:
                sign = "+" if item.old is _MISSING else "-" if item.new is _MISSING else "~"
                lines.append(f"{sign} {item.name}: {_value(item.old)} -> {_value(item.new)}")
    if diff.values:
        lines.append("Parameter values")
        for value in diff.values:
            back = _paint(" (older tag)", "31", colour) if value.rollback else ""
            lines.append(f"{'+' if value.old is None else '~'} {value.name}: "
                         f"{_value(_MISSING if value.old is None else value.old)} -> {_value(value.new)}{back}")
    summary = {a: sum(c.action == a for c in diff.resources) for a in ("Add", "Modify", "Remove")}
    replaced = sum(c.replacement in ("True", "Conditional") for c in diff.resources)
    suppressed = sum(s.broadens for s in diff.security if s.kind == "checkov")
    lines.append(f"{summary['Add']} to add, {summary['Modify']} to modify ({replaced} replaced), "
                 f"{summary['Remove']} to remove; {sum(s.broadens for s in diff.security) - suppressed} security "
                 f"broadening(s)" + (f", {suppressed} checkov suppression(s) added or reworded" if suppressed else ""))
    return "\n".join(lines)


def _security_line(sec: SecurityChange, what: str) -> str:
    if sec.kind != "checkov":
        return f"[{sec.kind}] {what} {sec.resource}: {sec.detail}"
    if not sec.broadens:
        return f"[checkov] no longer suppressed {sec.check} on {sec.resource} (reason was: {sec.comment})"
    was = f" (reason was: {sec.was})" if sec.was is not None else ""
    return f"[checkov] suppressed {sec.check} on {sec.resource}: {sec.comment}{was}"


def render_json(diff: TemplateDiff) -> str:
    def plain(value: Any) -> Any:
        return None if value is _MISSING else value

    return json.dumps({
        "resources": [{"logicalId": c.logical_id, "type": c.resource_type, "action": c.action,
                       "replacement": c.replacement,
                       "properties": [{"path": p.path, "old": plain(p.old), "new": plain(p.new),
                                       "replaces": p.replaces} for p in c.properties]} for c in diff.resources],
        "security": [{"kind": s.kind, "broadens": s.broadens, "resource": s.resource, "detail": s.detail}
                     | ({"check": s.check, "comment": s.comment, "was": s.was} if s.kind == "checkov" else {})
                     for s in diff.security],
        "parameters": [{"name": p.name, "old": plain(p.old), "new": plain(p.new)} for p in diff.parameters],
        "outputs": [{"name": p.name, "old": plain(p.old), "new": plain(p.new)} for p in diff.outputs],
        "parameterValues": [{"name": v.name, "old": v.old, "new": v.new, "rollback": v.rollback is not None}
                            for v in diff.values],
        "empty": diff.empty,
    }, indent=2, sort_keys=True)
