"""The monthly cost of one template next to another's (`fbc cost --against`, `fbc diff --cost`): per resource
and in total, after AWS's always-free allowances and at list price.

Each template is priced alone (estimate_template: from the record a build leaves in its Metadata), with the
account's allowances, since it is the same stack before and after. The old template's resources its record does
not name (it has none: an older fbc's; or added by hand) are priced with the new build's record where the new
template has the same logical ID and type: an unchanged resource then costs the same on both sides, whatever
the old template records. A resource present in both but priced in one only is left out of the delta: the old
side takes the new side's figure (or drops its own when the new side has none), and a warning says so.
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

from ..emit.manifest import Manifest
from .estimate import UNNAMED, UNRECORDED, Estimate, Line, NotPriced, apply_allowances, estimate_template, read_record
from .prices import Prices
from .report import allowance_statement, spot_sensitivity
from .usage import Usage

Change = Literal["added", "removed", "changed", "unchanged"]
EPSILON = 1e-9  # floating-point noise below a billable amount
ROUNDING = ("amounts are rounded to the cent; totals are computed before rounding, so the rounded rows (and idle "
            "plus usage) may differ from the rounded total by a cent or two")
DROPPED = "priced in the old template only: left out of the delta (its old figure is not counted)"


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
    rounding: str = ROUNDING  # how the figures shown relate to the totals shown (for every rendering)
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


def _names(ids: list[str], shown: int = 5) -> str:
    return ", ".join(ids[:shown]) + (f" and {len(ids) - shown} more" if len(ids) > shown else "")


@dataclass(frozen=True)
class _Evened:
    """How the old template was made comparable with the new one (logical IDs, sorted)."""

    recorded: bool  # the old template carries an fbc record fbc reads
    borrowed: list[str]  # priced with the new build's record
    assumed: list[str]  # unpriced in the old template: the new figure taken on both sides
    dropped: list[str]  # unpriced in the new template: the old figure left out


def _warnings(old: Estimate | None, new: Estimate, lines: list[DeltaLine], evened: _Evened | None) -> list[str]:
    out = []
    if evened is not None and evened.borrowed:
        why = ("carries no fbc record (built by an older fbc, or not by fbc)" if not evened.recorded
               else "has an fbc record that does not name them")
        out.append(f"the old template {why}: {len(evened.borrowed)} of its resources are priced with the new "
                   f"build's record (what each serves; the plan's services, queues and schedules), as the new "
                   f"template has them with the same logical ID and type")
    if evened is not None and evened.assumed:
        out.append(f"{len(evened.assumed)} resource(s) could not be priced in the old template: each is taken at its "
                   f"new cost on both sides, so the delta leaves them out ({_names(evened.assumed)})")
    if evened is not None and evened.dropped:
        out.append(f"{len(evened.dropped)} resource(s) could not be priced in the new template: their old cost is "
                   f"not counted either, so the delta leaves them out ({_names(evened.dropped)})")
    for label, found, change in (("old", old, "removed"), ("new", new, "added")):
        blind = {n.resource for n in (found.not_priced if found else [])
                 if n.reason in (UNRECORDED, UNNAMED) or n.reason.startswith("its properties are not ones")}
        alone = sorted(line.logical_id for line in lines if line.change == change and line.logical_id in blind)
        if alone:
            out.append(f"{len(alone)} resource(s) only in the {label} template could not be priced (no fbc record "
                       f"names them, or fbc cannot read them): the delta leaves them out ({_names(alone)})")
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


def _old_estimate(before: dict[str, Any], after: dict[str, Any], new: Estimate, prices: Prices,
                  usage: Usage) -> tuple[Estimate, _Evened]:
    """The old template priced to compare with the new one: with its record, completed by the new build's for
    the resources it does not name (the same logical ID and type in the new template), then evened out: a
    resource in both templates priced on one side only takes the new side's figure, or none."""
    own, own_facts, recorded = read_record(before)
    theirs, their_facts, _ = read_record(after)
    resources: dict[str, Any] = before.get("Resources", {})
    borrowed = [e for e in theirs if e.logical_id not in own and e.logical_id in resources
                and str(resources[e.logical_id].get("Type", "")) == e.type]
    manifest = Manifest((*own.entries, *borrowed))
    old = estimate_template(before, prices, usage, manifest, own_facts if recorded else their_facts,
                            allowances=False, strict=False, recorded=recorded)
    both = set(resources) & set(after.get("Resources", {}))
    old_lines, new_lines = _lines_by_resource(old), _lines_by_resource(new)
    unpriced_old = {n.resource for n in old.not_priced}
    unpriced_new = {n.resource for n in new.not_priced}
    assumed = sorted(r for r in both if r in unpriced_old and r not in old_lines
                     and r not in unpriced_new and r in new_lines)
    dropped = sorted(r for r in both if r in unpriced_new and r not in new_lines
                     and r not in unpriced_old and r in old_lines)
    if assumed or dropped:
        kinds = {r: str(resources[r].get("Type", "")) for r in both}
        kept = [line for line in old.lines if line.resource not in dropped]
        kept += [line for r in assumed for line in new_lines[r]]
        old.lines = sorted(kept, key=lambda line: line.resource)  # stable: each resource's lines in their order
        old.not_priced += [NotPriced(r, kinds[r], DROPPED) for r in dropped]
    apply_allowances([old])
    return old, _Evened(recorded, sorted(e.logical_id for e in borrowed), assumed, dropped)


def _lines_by_resource(estimate: Estimate) -> dict[str, list[Line]]:
    out: dict[str, list[Line]] = {}
    for line in estimate.lines:
        out.setdefault(line.resource, []).append(line)
    return out


def cost_delta(before: dict[str, Any] | None, after: dict[str, Any], prices: Prices, usage: Usage) -> CostDelta:
    """Price both templates (JSON dicts; before None: nothing deployed, every resource added) and compare them
    resource by resource."""
    new = estimate_template(after, prices, usage, strict=True)
    old, evened = _old_estimate(before, after, new, prices, usage) if before is not None else (None, None)
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
        not_priced=_not_priced(old, new), warnings=_warnings(old, new, lines, evened),
        allowances=_allowances(old, new),
        before_idle=old.total("idle", after=True) if old else 0.0, after_idle=new.total("idle", after=True),
        before_estimate=old, after_estimate=new)
