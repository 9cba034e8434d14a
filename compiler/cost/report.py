"""An estimate as text (people) or JSON (tools), and several side by side (--compare)."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable
from typing import Any

from .estimate import Estimate, Kind, Line
from .usage import SPOT_SENSITIVITY


def money(value: float) -> str:
    rounded = round(value, 2) + 0.0  # no -0.00
    return f"{'-' if rounded < 0 else ''}${abs(rounded):,.2f}"


def _row(line: Line) -> str:
    free = f"-{money(line.free)}" if line.free else ""
    return (f"  {line.resource[:34]:<34} {line.what[:58]:<58} {money(line.cost):>11} {free:>10} "
            f"{money(line.after):>11}")


def allowance_statement(estimate: Estimate) -> str:
    """Which always-free allowances the estimate took as its stack's own: they are per account, not per stack."""
    used = "; ".join(a.name for a in estimate.allowances) or "none needed"
    stack = estimate.facts.stack_name or "this stack"
    whose = (f"shared by {', '.join([stack, *estimate.shared_with])} and nothing else" if estimate.shared_with
             else f"{stack}'s alone")
    return (f"AWS's always-free allowances are per account (per organization under AWS Organizations); those applied "
            f"({used}) are assumed {whose} in the account")


def spot_sensitivity(estimate: Estimate) -> dict[float, float]:
    """Fargate Spot's discount is AWS's "up to" ceiling: the total after allowances at other discounts."""
    return {d: estimate.at_spot_discount(d) for d in SPOT_SENSITIVITY} if estimate.on_spot else {}


def spot_line(estimate: Estimate) -> list[str]:
    found = spot_sensitivity(estimate)
    if not found:
        return []
    shown = ", ".join(f"{money(v)} at {d:.0%}" for d, v in found.items())
    return [f"FARGATE SPOT is \"up to\" {estimate.usage.spot_discount:.0%} below on-demand; total after allowances at "
            f"other discounts: {shown}"]


def text(estimate: Estimate) -> str:
    plan, prices = estimate.facts, estimate.prices
    out = [f"{plan.stack_name}: {plan.profile} profile, {plan.environment}, {plan.region} "
           f"(list prices of {prices.region}, checked {prices.data.checked})",
           "assumes:", *(f"  - {a}" for a in [*estimate.usage.assumptions(), allowance_statement(estimate)]), ""]
    header = f"  {'resource':<34} {'what':<58} {'list/month':>11} {'free':>10} {'after':>11}"
    sections: list[tuple[Kind, str]] = [("idle", "IDLE: billed with no traffic"),
                                        ("usage", "USAGE: grows with traffic")]
    for kind, title in sections:
        out += [title, header]
        out += [_row(line) for line in estimate.lines if line.kind == kind]
        out += [f"  {kind + ' total':<93} {money(estimate.total(kind)):>11} "
                f"{'':>10} {money(estimate.total(kind, after=True)):>11}", ""]
    if estimate.allowances:
        out.append("ALWAYS-FREE ALLOWANCES APPLIED")
        out += [f"  {a.name:<50} {a.quantity:>16,.0f} used  -{money(a.value)}" for a in estimate.allowances]
        out.append("")
    out.append(f"TOTAL per month: {money(estimate.total())} at list price, {money(estimate.total(after=True))} "
               f"after allowances (idle {money(estimate.total('idle', after=True))}, usage "
               f"{money(estimate.total('usage', after=True))})")
    out += spot_line(estimate)
    if estimate.not_priced:
        out += ["", "NOT PRICED"]
        out += [f"  {n.resource} ({n.type}): {n.reason}" for n in estimate.not_priced]
    free = sum(estimate.free_resources.values())
    out += ["", f"{free} resources have no charge of their own ({', '.join(sorted(estimate.free_resources))})"]
    return "\n".join(out)


def data(estimate: Estimate) -> dict[str, Any]:
    plan, prices = estimate.facts, estimate.prices
    return {
        "stack": plan.stack_name, "profile": plan.profile, "environment": plan.environment, "region": plan.region,
        "prices": {"region": prices.region, "checked": prices.data.checked, "currency": "USD"},
        "assumptions": [*estimate.usage.assumptions(), allowance_statement(estimate)],
        "allowancesSharedWith": list(estimate.shared_with),
        "spotSensitivity": [{"discount": d, "afterAllowances": round(v, 2)}
                            for d, v in spot_sensitivity(estimate).items()],
        "lines": [{"resource": line.resource, "kind": line.kind, "what": line.what, "meter": line.meter,
                   "unit": prices.unit(line.meter), "source": prices.source(line.meter),
                   "quantity": round(line.quantity, 6), "rate": line.rate, "list": round(line.cost, 6),
                   "free": round(line.free, 6), "after": round(line.after, 6)} for line in estimate.lines],
        "allowances": [{"name": a.name, "meter": a.meter, "quantity": a.quantity, "value": round(a.value, 6)}
                       for a in estimate.allowances],
        "totals": {kind or "all": {"list": round(estimate.total(kind), 2),
                                   "afterAllowances": round(estimate.total(kind, after=True), 2)}
                   for kind in ("idle", "usage", None)},
        "notPriced": [{"resource": n.resource, "type": n.type, "reason": n.reason} for n in estimate.not_priced],
    }


def json_text(estimates: list[Estimate]) -> str:
    body: Any = data(estimates[0]) if len(estimates) == 1 else [data(e) for e in estimates]
    return json.dumps(body, indent=2)


def comparison(estimates: list[Estimate]) -> str:
    names = [e.facts.profile for e in estimates]
    rows: list[tuple[str, Callable[[Estimate], float]]] = [
        ("idle, list", lambda e: e.total("idle")),
        ("idle, after allowances", lambda e: e.total("idle", True)),
        ("usage, list", lambda e: e.total("usage")),
        ("usage, after allowances", lambda e: e.total("usage", True)),
        ("total, list", lambda e: e.total()),
        ("total, after allowances", lambda e: e.total(after=True)),
    ]
    out = [f"{estimates[0].facts.app} ({estimates[0].facts.environment}), per month, assuming:",
           *(f"  - {a}" for a in estimates[0].usage.assumptions()[:3]),
           f"  {'':<26}" + "".join(f"{n:>14}" for n in names)]
    out += [f"  {label:<26}" + "".join(f"{money(get(e)):>14}" for e in estimates) for label, get in rows]
    for e in estimates:
        if e.not_priced:
            kinds = Counter(n.type if n.type != "-" else n.resource for n in e.not_priced)
            out.append(f"not priced in {e.facts.profile}: "
                       + ", ".join(f"{k} x{c}" if c > 1 else k for k, c in sorted(kinds.items())))
    return "\n".join(out)


def _sum(estimates: list[Estimate], kind: Kind | None = None, after: bool = False) -> float:
    return sum(e.total(kind, after) for e in estimates)


def shared_text(estimates: list[Estimate]) -> str:
    """Several environments of one account (apply_allowances over all): each, then their sum."""
    stacks = ", ".join(e.facts.stack_name for e in estimates)
    out = [text(e) + "\n" for e in estimates]
    out.append(f"ALL {len(estimates)} STACKS IN ONE ACCOUNT ({stacks}), sharing its always-free allowances: "
               f"{money(_sum(estimates))} at list price, {money(_sum(estimates, after=True))} after allowances "
               f"per month (idle {money(_sum(estimates, 'idle', True))}, usage "
               f"{money(_sum(estimates, 'usage', True))})")
    return "\n".join(out)


def shared_json(estimates: list[Estimate]) -> str:
    body = {"environments": [data(e) for e in estimates],
            "allowancesSharedBy": [e.facts.stack_name for e in estimates],
            "totals": {kind or "all": {"list": round(_sum(estimates, kind), 2),
                                       "afterAllowances": round(_sum(estimates, kind, True), 2)}
                       for kind in ("idle", "usage", None)}}
    return json.dumps(body, indent=2)
