"""`fbc diff --cost` as text and JSON: the monthly cost delta (compiler/cost/delta.py) next to the diff. The
markdown comment renders the same figures itself (markdown.py)."""

from __future__ import annotations

from typing import Any

from .markdown import Cost, usd


def _usd(amount: float | None, signed: bool = False) -> str:
    return "-" if amount is None else usd(amount, signed)


def text(cost: Cost) -> str:
    """A short table: the totals, each resource that changes at list price, then the free tier's rows."""
    moved = [line for line in cost.lines if line.change != "unchanged"]
    width = max([len(line.logical_id) for line in moved] + [8])
    lines = [f"Cost (USD/month, after the free tier): {usd(cost.before_total)} -> {usd(cost.after_total)} "
             f"({usd(cost.delta, signed=True)}); at list price {usd(cost.before_list)} -> {usd(cost.after_list)}"]
    lines += [f"  {line.logical_id:<{width}}  {line.change:<9} {_usd(line.before):>10} -> {_usd(line.after):>10}  "
              f"{usd(line.delta, signed=True):>10}" for line in moved]
    lines += [f"  {'free tier: ' + a.name:<{width}}  covers    {_usd(-a.before):>10} -> {_usd(-a.after):>10}  "
              f"{usd(a.delta, signed=True):>10}" for a in cost.allowances if round(a.delta, 2)]
    lines += [f"  WARNING: {warning}" for warning in cost.warnings]
    lines += [f"  not priced: {name}" for name in cost.not_priced]
    return "\n".join(lines)


def data(cost: Cost) -> dict[str, Any]:
    """The JSON object: totals, the delta as the comment's summary says it, and every resource's line."""
    return {
        "before": round(cost.before_total, 2), "after": round(cost.after_total, 2),
        "beforeList": round(cost.before_list, 2), "afterList": round(cost.after_list, 2),
        "delta": round(cost.delta, 2),
        "resources": [{"logicalId": line.logical_id, "type": line.type, "change": line.change,
                       "before": None if line.before is None else round(line.before, 2),
                       "after": None if line.after is None else round(line.after, 2),
                       "delta": round(line.delta, 2)} for line in cost.lines],  # at list price
        "allowances": [{"name": a.name, "coveredBefore": round(a.before, 2), "coveredAfter": round(a.after, 2),
                        "delta": round(a.delta, 2)} for a in cost.allowances],
        "assumptions": list(cost.assumptions), "notPriced": list(cost.not_priced),
        "warnings": list(cost.warnings), "rounding": cost.rounding,
    }
