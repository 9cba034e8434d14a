"""A cost delta (delta.py) as text (people) or JSON (tools): the resources whose cost or definition changes, each
on its line, then the totals before and after, idle and usage, list price and after allowances."""

from __future__ import annotations

import json
from typing import Any

from .delta import AllowanceDelta, CostDelta, DeltaLine
from .report import money

CENT = 0.005  # what rounds to a cent in the report


def signed(value: float) -> str:
    return f"{'-' if value <= -CENT else '+'}{money(abs(value))}"


def _figure(value: float | None) -> str:
    return "-" if value is None else money(value)


def _row(line: DeltaLine) -> str:
    priced = "" if line.priced else " (not priced)" if not (line.priced_before or line.priced_after) else (
        " (unpriced before)" if not line.priced_before else " (unpriced after)")
    return (f"  {line.logical_id[:34]:<34} {line.type[:44]:<44} {line.change + priced:<22} "
            f"{_figure(line.before):>11} {_figure(line.after):>11} {signed(line.delta):>11}")


def _allowance_row(allowance: AllowanceDelta) -> str:
    return (f"  {'free tier: ' + allowance.name:<79}{'':<22} {money(-allowance.before):>11} "
            f"{money(-allowance.after):>11} {signed(allowance.delta):>11}")


def text(delta: CostDelta, against: str) -> str:
    new = delta.after_estimate
    facts = new.facts if new is not None else None
    title = (f"{facts.stack_name}: {facts.profile} profile, {facts.environment}, {facts.region}" if facts
             else "the new template")
    prices = new.prices if new is not None else None
    checked = f" (list prices of {prices.region}, checked {prices.data.checked})" if prices else ""
    out = [f"{title} against {against}{checked}", "assumes:", *(f"  - {a}" for a in delta.assumptions), ""]
    # Every resource added or removed, and those changed whose cost moves (to the cent); the rest counted.
    shown = [line for line in delta.lines if line.change in ("added", "removed") or abs(line.delta) >= CENT]
    out.append("CHANGES per month: each resource at list price, then what the account's free tier covers")
    out.append(f"  {'resource':<34} {'type':<44} {'change':<22} {'before':>11} {'after':>11} {'delta':>11}")
    out += [_row(line) for line in shown] or ["  (no resource added or removed, and no cost changed)"]
    same = [line for line in delta.lines if line not in shown]
    changed = sum(line.change == "changed" for line in same)
    if same:
        out.append(f"  ({changed} resources changed and {len(same) - changed} unchanged, at the same cost)")
    out += [_allowance_row(a) for a in delta.allowances if abs(a.delta) >= CENT]
    out += ["",
            f"TOTAL per month after allowances: {money(delta.before_total)} -> {money(delta.after_total)} "
            f"({signed(delta.delta)})",
            f"  idle: {money(delta.before_idle)} -> {money(delta.after_idle)}; usage: {money(delta.before_usage)} "
            f"-> {money(delta.after_usage)}",
            f"  at list price: {money(delta.before_list)} -> {money(delta.after_list)} "
            f"({signed(delta.after_list - delta.before_list)})",
            f"  ({delta.rounding})"]
    out += [f"WARNING: {w}" for w in delta.warnings]
    if delta.not_priced:
        out += ["", "NOT PRICED", *(f"  {n}" for n in delta.not_priced)]
    return "\n".join(out)


def data(delta: CostDelta, against: str) -> dict[str, Any]:
    def usd(value: float | None) -> float | None:
        return None if value is None else round(value, 6)

    return {
        "against": against,
        "assumptions": delta.assumptions,
        "lines": [{"resource": line.logical_id, "type": line.type, "change": line.change,
                   "pricedBefore": line.priced_before, "pricedAfter": line.priced_after,
                   "before": usd(line.before), "after": usd(line.after), "delta": round(line.delta, 6)}
                  for line in delta.lines],  # at list price
        "allowances": [{"name": a.name, "coveredBefore": usd(a.before), "coveredAfter": usd(a.after),
                        "delta": round(a.delta, 6)} for a in delta.allowances],
        "totals": {
            "afterAllowances": {"before": round(delta.before_total, 2), "after": round(delta.after_total, 2),
                                "delta": round(delta.delta, 2)},
            "list": {"before": round(delta.before_list, 2), "after": round(delta.after_list, 2),
                     "delta": round(delta.after_list - delta.before_list, 2)},
            "idle": {"before": round(delta.before_idle, 2), "after": round(delta.after_idle, 2)},
            "usage": {"before": round(delta.before_usage, 2), "after": round(delta.after_usage, 2)},
        },
        "notPriced": delta.not_priced,
        "warnings": delta.warnings,
        "rounding": delta.rounding,
    }


def json_text(delta: CostDelta, against: str) -> str:
    return json.dumps(data(delta, against), indent=2)
