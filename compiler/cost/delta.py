"""The monthly cost of one template next to another's (`fbc cost --against`, `fbc diff --cost`): per resource
and in total, after AWS's always-free allowances and at list price.

Each template is priced alone (estimate_template: from the record a build leaves in its Metadata, or by type
for an older fbc's template), with the account's allowances, since it is the same stack before and after.
Resources are compared at list price, what each costs by itself; the always-free allowances are their own
lines (how much each covers before and after). Spread over resources, an allowance would make a resource nobody
touched look changed: a second queue's polls exhaust SQS's free million, and the first queue, listed first,
is the one that would show the charge.
A resource is "changed" when its type or properties differ or its monthly cost does.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Literal

from .estimate import UNRECORDED, Estimate, estimate_template
from .prices import Prices
from .report import allowance_statement, spot_sensitivity
from .usage import Usage

Change = Literal["added", "removed", "changed", "unchanged"]
EPSILON = 1e-9  # floating-point noise below a billable amount


@dataclass(frozen=True)
class DeltaLine:
    logical_id: str
    type: str  # CloudFormation type
    change: Change
    before: float | None  # USD/month at list price, the resource's own cost (None: not in that template)
    after: float | None
    priced_before: bool = True  # False: listed in not_priced for that template (its 0.0 is not a price)
    priced_after: bool = True

    @property
    def delta(self) -> float:
        return (self.after or 0.0) - (self.before or 0.0)

    @property
    def priced(self) -> bool:
        return self.priced_before and self.priced_after


@dataclass(frozen=True)
class AllowanceDelta:
    """How much of the monthly bill one always-free allowance covers, before and after (USD, >= 0)."""

    name: str
    before: float
    after: float

    @property
    def delta(self) -> float:
        """What the allowance changes in the bill: covering more lowers it."""
        return self.before - self.after


@dataclass(frozen=True)
class CostDelta:
    lines: list[DeltaLine]  # stable order: by abs(delta) desc, then logical_id
    before_total: float  # after allowances
    after_total: float
    before_list: float  # list price, before allowances
    after_list: float
    assumptions: list[str]  # one sentence each (usage figures, Spot discount, allowances assumed)
    not_priced: list[str]
    warnings: list[str] = field(default_factory=list)  # what makes the comparison uneven, one sentence each
    allowances: list[AllowanceDelta] = field(default_factory=list)  # those that cover anything, by name
    before_idle: float = 0.0  # after allowances
    after_idle: float = 0.0
    before_estimate: Estimate | None = field(default=None, compare=False, repr=False)
    after_estimate: Estimate | None = field(default=None, compare=False, repr=False)

    @property
    def delta(self) -> float:
        return self.after_total - self.before_total

    @property
    def before_usage(self) -> float:
        return self.before_total - self.before_idle

    @property
    def after_usage(self) -> float:
        return self.after_total - self.after_idle


def _definition(resource: dict[str, Any]) -> str:
    return json.dumps({k: resource.get(k) for k in ("Type", "Properties")}, sort_keys=True)


def _change(logical_id: str, before: dict[str, Any], after: dict[str, Any], costs: tuple[float, float]) -> Change:
    if logical_id not in before:
        return "added"
    if logical_id not in after:
        return "removed"
    moved = abs(costs[1] - costs[0]) > EPSILON
    return "changed" if moved or _definition(before[logical_id]) != _definition(after[logical_id]) else "unchanged"


def _not_priced(old: Estimate | None, new: Estimate) -> list[str]:
    """The new template's, then what only the old one had unpriced."""
    out = [f"{n.resource} ({n.type}): {n.reason}" for n in new.not_priced]
    return out + [f"{n.resource} ({n.type}, before): {n.reason}" for n in (old.not_priced if old else [])
                  if n not in new.not_priced]


def _warnings(old: Estimate | None, new: Estimate, lines: list[DeltaLine]) -> list[str]:
    out = []
    for label, found in (("old", old), ("new", new)):
        blind = [n for n in (found.not_priced if found else []) if n.reason == UNRECORDED]
        if blind:
            out.append(f"the {label} template carries no fbc record (built by an older fbc, or not by fbc): "
                       f"{len(blind)} of its resources are not priced, so the delta counts their cost on one side only")
    uneven = sum(abs(line.delta) for line in lines if not line.priced)
    if uneven >= 0.005:
        out.append(f"${uneven:,.2f}/month of the delta is on resources priced in one template only")
    return out


def _allowances(old: Estimate | None, new: Estimate) -> list[AllowanceDelta]:
    def covered(estimate: Estimate | None) -> dict[str, float]:
        out: dict[str, float] = {}
        for use in estimate.allowances if estimate else []:
            out[use.name] = out.get(use.name, 0.0) + use.value
        return out

    was, now = covered(old), covered(new)
    return [AllowanceDelta(name, was.get(name, 0.0), now.get(name, 0.0)) for name in sorted(set(was) | set(now))]


def cost_delta(before: dict[str, Any] | None, after: dict[str, Any], prices: Prices, usage: Usage) -> CostDelta:
    """Price both templates (JSON dicts; before None: nothing deployed, every resource added) and compare them
    resource by resource."""
    new = estimate_template(after, prices, usage)
    old = estimate_template(before, prices, usage) if before is not None else None
    old_resources: dict[str, Any] = before.get("Resources", {}) if before is not None else {}
    new_resources: dict[str, Any] = after.get("Resources", {})
    unpriced_after = {n.resource for n in new.not_priced}
    unpriced_before = {n.resource for n in old.not_priced} if old else set()
    new_list = new.by_resource(after=False)
    old_list = old.by_resource(after=False) if old else {}
    lines = []
    for logical_id in sorted(set(old_resources) | set(new_resources)):
        was = old_list.get(logical_id, 0.0) if logical_id in old_resources else None
        now = new_list.get(logical_id, 0.0) if logical_id in new_resources else None
        kind = str((new_resources.get(logical_id) or old_resources[logical_id]).get("Type", ""))
        lines.append(DeltaLine(
            logical_id, kind, _change(logical_id, old_resources, new_resources, (was or 0.0, now or 0.0)), was, now,
            logical_id not in unpriced_before, logical_id not in unpriced_after))
    lines.sort(key=lambda line: (-round(abs(line.delta), 9), line.logical_id))
    assumptions = [*usage.assumptions(), allowance_statement(new)]
    sensitivity = spot_sensitivity(new)
    if sensitivity:
        assumptions.append("Fargate Spot's discount is AWS's \"up to\" ceiling; the new template's total after "
                           "allowances at other discounts: "
                           + ", ".join(f"${v:,.2f} at {d:.0%}" for d, v in sensitivity.items()))
    return CostDelta(
        lines=lines,
        before_total=old.total(after=True) if old else 0.0, after_total=new.total(after=True),
        before_list=old.total() if old else 0.0, after_list=new.total(),
        assumptions=assumptions,
        not_priced=_not_priced(old, new), warnings=_warnings(old, new, lines), allowances=_allowances(old, new),
        before_idle=old.total("idle", after=True) if old else 0.0, after_idle=new.total("idle", after=True),
        before_estimate=old, after_estimate=new)
