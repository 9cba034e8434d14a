"""`fbc diff --format markdown`: one pull-request comment body, pure (a diff in, text out).

The first line is a hidden marker naming the stack (the GitHub Action finds the one comment to update by it),
then a hidden summary line the Action reads its outputs from, a visible summary, and collapsible sections by
what a reviewer needs first: replacements and removals, security, resources, parameters, cost. The same input
gives the same bytes (no timestamps, every list sorted), the body stays under GitHub's comment limit
(sections are cut from the least important, and a note says so), and no parameter value that may be secret is
ever shown.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from .diff import _MISSING, ParameterChange, ResourceChange, TemplateDiff
from .security import SecurityChange

LIMIT = 65_536  # GitHub's comment body limit, in characters
SUMMARY_PREFIX = "<!-- flowbuilder:summary "  # the Action's outputs come from this line: keep it exact
_ROWS_PER_CELL = 8  # property paths listed in one table cell
_ITEM_CHARS = 400  # free text (a note, a reason) is cut beyond this; code spans at 200
_SECRET = re.compile(r"secret|password|passwd|token|credential|private|api_?keys?", re.IGNORECASE)
_HIDDEN = "(changed, value hidden)"


class CostLine(Protocol):
    """One resource's monthly cost at list price before and after (compiler/cost/delta.py's DeltaLine)."""

    @property
    def logical_id(self) -> str: ...
    @property
    def type(self) -> str: ...
    @property
    def change(self) -> str: ...  # added | removed | changed | unchanged
    @property
    def before(self) -> float | None: ...
    @property
    def after(self) -> float | None: ...
    @property
    def delta(self) -> float: ...


class Covered(Protocol):
    """What one always-free allowance covers before and after (compiler/cost/delta.py's AllowanceDelta)."""

    @property
    def name(self) -> str: ...
    @property
    def before(self) -> float: ...
    @property
    def after(self) -> float: ...
    @property
    def delta(self) -> float: ...


class Cost(Protocol):
    """The monthly cost delta of a diff (compiler/cost/delta.py's CostDelta): resources at list price, the free
    tier on its own rows, totals after it."""

    @property
    def lines(self) -> Sequence[CostLine]: ...
    @property
    def allowances(self) -> Sequence[Covered]: ...
    @property
    def before_total(self) -> float: ...
    @property
    def after_total(self) -> float: ...
    @property
    def before_list(self) -> float: ...
    @property
    def after_list(self) -> float: ...
    @property
    def assumptions(self) -> Sequence[str]: ...
    @property
    def not_priced(self) -> Sequence[str]: ...
    @property
    def warnings(self) -> Sequence[str]: ...  # what makes the comparison uneven (a template without fbc's record)
    @property
    def rounding(self) -> str: ...
    @property
    def delta(self) -> float: ...


@dataclass(frozen=True)
class Context:
    """What the comment is about: the stack, and what the diff compared (deployed: None when offline)."""

    stack: str
    environment: str
    profile: str
    deployed: bool | None = None
    secrets: frozenset[str] = frozenset()  # parameters declared NoEcho in either template
    notes: tuple[str, ...] = ()  # the network picked, pre-flight warnings


@dataclass
class _Section:
    title: str
    items: list[str]
    head: list[str] = field(default_factory=list)  # before the items (a table's header)
    tail: list[str] = field(default_factory=list)  # after them (totals, assumptions)
    open: bool = False
    shown: int = -1  # items kept after truncation; -1: all

    def render(self) -> str:
        items = self.items if self.shown < 0 else self.items[:self.shown]
        more = [f"- … {len(self.items) - len(items)} more not shown"] if len(items) < len(self.items) else []
        gap = [""] if more and self.head else []  # a note after a table needs a blank line to leave it
        body = "\n".join(self.head + items + gap + more + self.tail)
        return (f"<details{' open' if self.open else ''}><summary>{self.title}</summary>\n\n{body}\n\n"
                f"</details>")


# --- the comment ----------------------------------------------------------------------------------------------

def render(diff: TemplateDiff, context: Context, cost: Cost | None = None) -> str:
    """The comment body for `diff` (exit 0 when empty, else 1)."""
    exit_code = 0 if diff.empty else 1
    head = [_marker(context.stack),
            _summary_json(not diff.empty, bool(diff.risky), cost.delta if cost else None, exit_code),
            f"**fbc diff** `{context.stack}` ({context.environment}, {context.profile} profile)", "",
            _summary_line(diff, cost), ""]
    if context.deployed is False:
        head += [f"`{context.stack}` is not deployed: the whole template is new.", ""]
    if diff.risky:
        head += ["**Needs a careful review:** " + "; ".join(_careful(diff)), ""]
    head += [f"> {_escape(_cut(note, _ITEM_CHARS))}  " for note in context.notes[:20]] + (
        [""] if context.notes else [])
    sections = [s for s in (_gone(diff), _security(diff), _resources(diff), _parameters(diff, context),
                            _cost(cost) if cost else None) if s is not None]
    return _fit("\n".join(head).rstrip("\n"), sections)


def _careful(diff: TemplateDiff) -> list[str]:
    """Why the change is risky, one clause per kind and resource (the sections below hold each statement):
    "broadens iam access of `TaskRole` (6 statements)" rather than six truncated policy lines."""
    def names(items: list[str]) -> str:
        shown = ", ".join(items[:6])
        return shown + (f" and {len(items) - 6} more" if len(items) > 6 else "")

    out = []
    removed = [c.logical_id for c in diff.resources if c.action == "Remove"]
    replaced = [c.logical_id for c in diff.resources if c.replacement in ("True", "Conditional")]
    if removed:
        out.append(f"removes {names([_code(r) for r in removed])}")
    if replaced:
        out.append(f"replaces {names([_code(r) for r in replaced])}")
    broadened: dict[tuple[str, str], int] = {}
    for change in diff.security:
        if change.broadens and change.kind != "checkov":
            broadened[(change.kind, change.resource)] = broadened.get((change.kind, change.resource), 0) + 1
    by_kind: dict[str, list[str]] = {}
    for (kind, resource), count in sorted(broadened.items()):
        by_kind.setdefault(kind, []).append(_code(resource) + (f" ({count} statements)" if count > 1 else ""))
    out += [f"broadens {kind} access of {names(items)}" for kind, items in by_kind.items()]
    out += [_escape(f"rolls {v.name} back from tag {v.rollback[0]} to {v.rollback[1]}") for v in diff.values
            if v.rollback]
    return out


def render_refused(context: Context, reason: str, lines: Sequence[str]) -> str:
    """The comment for a diff fbc refused (a profile switch without --change-profile, exit 2): what and why."""
    # The switch's lines: indented ones are items, others headings of the items after them.
    listed = [f"- {_escape(_cut(line.strip(), _ITEM_CHARS))}" if line.startswith(" ")
              else f"\n**{_escape(_cut(line.strip(), _ITEM_CHARS))}**\n" for line in lines[1:] if line.strip()]
    head = [_marker(context.stack), _summary_json(True, True, None, 2),
            f"**fbc diff** `{context.stack}` ({context.environment}, {context.profile} profile)", "",
            f"**Refused:** {_escape(_cut(reason.replace('listed above', 'listed below'), 1000))}", ""]
    title = _escape(_cut(lines[0].rstrip(":"), 200)) if lines else "what the switch deletes"
    section = _Section(f"What it deletes, replaces and leaves to migrate ({title})", listed, open=True)
    return _fit("\n".join(head).rstrip("\n"), [section] if listed else [])


def _marker(stack: str) -> str:
    return f"<!-- flowbuilder:diff stack={stack} -->"


def _summary_json(has_changes: bool, risky: bool, cost_delta: float | None, exit_code: int) -> str:
    data = {"has_changes": has_changes, "risky": risky, "cost_delta": _signed(cost_delta), "exit": exit_code}
    return f"{SUMMARY_PREFIX}{json.dumps(data, sort_keys=True)} -->"


def _signed(amount: float | None) -> str | None:
    return None if amount is None else usd(amount, signed=True).replace("$", "").replace(",", "")


def _summary_line(diff: TemplateDiff, cost: Cost | None) -> str:
    if diff.empty:
        parts = ["**No changes**"]
    else:
        replaced = [c for c in diff.resources if _replaces(c)]
        counts = {a: sum(c.action == a and not _replaces(c) for c in diff.resources) for a in ("Add", "Modify")}
        removed = sum(c.action == "Remove" for c in diff.resources)
        parts = [f"**{counts['Add']} to add, {counts['Modify']} to change, {len(replaced)} replaced, "
                 f"{removed} removed**"]
        # As render_text counts them: a checkov suppression is shown for its reason, it grants nothing.
        suppressed = sum(s.broadens and s.kind == "checkov" for s in diff.security)
        broadens = sum(s.broadens for s in diff.security) - suppressed
        narrows = sum(not s.broadens for s in diff.security)
        parts.append(f"security: {broadens} broaden(s), {narrows} narrow(s)"
                     + (f", {suppressed} checkov suppression(s)" if suppressed else "") if diff.security
                     else "no security changes")
        if diff.values:
            parts.append(f"{len(diff.values)} parameter value(s)")
    if cost is not None:
        parts.append(f"cost {_money(cost.delta, signed=True)}/month")
    return " · ".join(parts)


# --- sections -------------------------------------------------------------------------------------------------

def _replaces(change: ResourceChange) -> bool:
    return change.action == "Modify" and change.replacement in ("True", "Conditional")


def _gone(diff: TemplateDiff) -> _Section | None:
    items = []
    for change in diff.resources:
        if change.action == "Remove":
            items.append(f"- **remove** {_code(change.logical_id)} ({change.resource_type})")
        elif _replaces(change):
            verb = "replace" if change.replacement == "True" else "may replace"
            why = [p.path for p in change.properties if p.replaces]
            because = f": {', '.join(_code(p) for p in why[:_ROWS_PER_CELL])}" if why else ""
            items.append(f"- **{verb}** {_code(change.logical_id)} ({change.resource_type}){because}")
    return _Section(f"Replacements and removals ({len(items)})", items, open=True) if items else None


def _security(diff: TemplateDiff) -> _Section | None:
    if not diff.security:
        return None
    ordered = [s for s in diff.security if s.broadens] + [s for s in diff.security if not s.broadens]
    return _Section(f"Security changes ({len(ordered)})", [_security_item(s) for s in ordered])


def _security_item(sec: SecurityChange) -> str:
    what = "broadens" if sec.broadens else "narrows"
    if sec.kind != "checkov":
        return f"- **{what}** [{sec.kind}] {_code(sec.resource)}: {_code(sec.detail)}"
    if not sec.broadens:
        return f"- **narrows** [checkov] no longer suppressed {_code(sec.check)} on {_code(sec.resource)}"
    was = f" (reason was: {_escape(_cut(sec.was, _ITEM_CHARS))})" if sec.was is not None else ""
    return (f"- **broadens** [checkov] suppressed {_code(sec.check)} on {_code(sec.resource)}: "
            f"{_escape(_cut(sec.comment or '', _ITEM_CHARS))}{was}")


def _resources(diff: TemplateDiff) -> _Section | None:
    if not diff.resources:
        return None
    rows = []
    for change in diff.resources:
        action = {"Add": "add", "Remove": "remove"}.get(change.action) or (
            {"True": "replace", "Conditional": "may replace"}.get(change.replacement, "change"))
        paths = [_code(p.path) for p in change.properties]
        cell = "<br>".join(paths[:_ROWS_PER_CELL]) + (
            f"<br>… {len(paths) - _ROWS_PER_CELL} more" if len(paths) > _ROWS_PER_CELL else "")
        rows.append(f"| {action} | {_code(change.logical_id)} | {change.resource_type} | {cell} |")
    head = ["| Action | Resource | Type | Properties |", "|---|---|---|---|"]
    return _Section(f"Resource changes ({len(rows)})", rows, head=head)


def _secret(name: str, context: Context) -> bool:
    base = name.split(".")[0]
    return base in context.secrets or bool(_SECRET.search(base))


def _parameters(diff: TemplateDiff, context: Context) -> _Section | None:
    rows = []
    for value in diff.values:
        shown = (_HIDDEN, _HIDDEN) if _secret(value.name, context) else (
            "(none)" if value.old is None else _code(value.old), _code(value.new))
        back = " (older tag: rolls back)" if value.rollback else ""
        rows.append(f"| value | {_code(value.name)} | {shown[0]} | {shown[1]}{back} |")
    for kind, items in (("declaration", diff.parameters), ("output", diff.outputs)):
        rows += [_declared(kind, item, context) for item in items]
    if not rows:
        return None
    head = ["| What | Name | Before | After |", "|---|---|---|---|"]
    return _Section(f"Parameter, image and output changes ({len(rows)})", rows, head=head)


def _declared(kind: str, item: ParameterChange, context: Context) -> str:
    if kind == "declaration" and _secret(item.name, context):
        before, after = _HIDDEN, _HIDDEN
    else:
        before, after = _json(item.old), _json(item.new)
    return f"| {kind} | {_code(item.name)} | {before} | {after} |"


def _cost(cost: Cost) -> _Section:
    moved = sorted((line for line in cost.lines if line.change != "unchanged"),
                   key=lambda line: (-round(abs(line.delta), 2), line.logical_id))
    rows = [f"| {_code(line.logical_id)} | {line.type} | {line.change} | {_money(line.before)} | "
            f"{_money(line.after)} | {_money(line.delta, signed=True)} |" for line in moved if _cents(line.delta)]
    rows += [f"| free tier: {_escape(allowance.name)} | | covers | {_money(-allowance.before)} | "
             f"{_money(-allowance.after)} | {_money(allowance.delta, signed=True)} |"
             for allowance in cost.allowances if _cents(allowance.delta)]
    free = sorted(line.logical_id for line in moved if not _cents(line.delta))
    head = ["Each resource at list price; the account's always-free allowances on their own rows.", "",
            "| Resource | Type | Change | Before | After | Delta |", "|---|---|---|---|---|---:|"] if rows else []
    many = _ROWS_PER_CELL * 4
    tail = ["", f"Added, removed or changed at no cost: {', '.join(_code(name) for name in free[:many])}"
                + (f" and {len(free) - many} more" if len(free) > many else "") + "."] if free else []
    tail += ["", f"Total after the free tier: {_money(cost.before_total)} → {_money(cost.after_total)} "
                 f"(**{_money(cost.delta, signed=True)}/month**); at list price: {_money(cost.before_list)} → "
                 f"{_money(cost.after_list)}."]
    if cost.rounding:
        tail += ["", f"_{_escape(cost.rounding)}_"]
    if cost.warnings:
        tail += ["", "**Warning:**"] + [f"- {_escape(_cut(w, _ITEM_CHARS))}" for w in cost.warnings]
    if cost.not_priced:
        tail += ["", "Not priced:"] + [f"- {_escape(_cut(name, _ITEM_CHARS))}" for name in sorted(cost.not_priced)]
    if cost.assumptions:
        tail += ["", "Assumptions:"] + [f"- {_escape(_cut(a, _ITEM_CHARS))}" for a in cost.assumptions]
    return _Section(f"Cost delta ({usd(cost.delta, signed=True)}/month)", rows, head=head, tail=tail)


def _cents(amount: float) -> bool:
    return round(amount, 2) != 0


# --- fitting GitHub's limit -----------------------------------------------------------------------------------

_CUT_ORDER = ("Resource changes", "Parameter, image", "Cost delta", "Security changes", "Replacements")


def _fit(head: str, sections: list[_Section], limit: int = LIMIT) -> str:
    """The body under `limit` characters: the least important section's items go first (resources, then
    parameters, cost, security, replacements), a whole section when none of its items fits; a note at the end
    says what was cut. The marker and the summary are in `head`, which is always kept."""
    def body(note: str) -> str:
        # A section none of whose items fit is left out, unless it has a tail (the cost's totals and the
        # allowances it assumed, which every cost report states).
        kept = [s.render() for s in sections if s.shown != 0 or s.tail]
        return "\n\n".join([head] + kept + ([note] if note else [])) + "\n"

    def note() -> str:
        cut = [f"{s.title.split(' (')[0].lower()} ({'none' if s.shown == 0 else s.shown} of {len(s.items)} shown)"
               for s in sections if 0 <= s.shown < len(s.items)]
        return (f"_Truncated to fit GitHub's {limit:,}-character comment limit: {'; '.join(cut)}. "
                f"Run `fbc diff` for the whole diff._") if cut else ""

    for prefix in _CUT_ORDER:
        if len(body(note())) <= limit:
            break
        for section in (s for s in sections if s.title.startswith(prefix)):
            section.shown = len(section.items)
            low, high = 0, len(section.items)  # the most items that fit, by bisection (each try renders all)
            while low < high:
                section.shown = (low + high + 1) // 2
                if len(body(note())) <= limit:
                    low = section.shown
                else:
                    high = section.shown - 1
            section.shown = low
    return body(note())


# --- text -----------------------------------------------------------------------------------------------------

def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[:limit - 1] + "…"


_NOT_A_MENTION = "@\u2060"  # a word joiner after @: shown as @name, but GitHub notifies no one


def _one_line(text: str) -> str:
    return text.replace("\r\n", " ").replace("\r", " ").replace("\n", " ")


def _escape(text: str) -> str:
    """Plain text in Markdown: no HTML, no table breaks, no emphasis by accident, no @mention of anyone (a
    reason or a description comes from a template a pull request may have written)."""
    return re.sub(r"([\\`*_|<>\[\]$])", r"\\\1", _one_line(text)).replace("@", _NOT_A_MENTION)


def _code(value: Any) -> str:
    """An inline code span; a cell's pipes escaped (GitHub's tables split on them even inside code). The fence
    is one backtick longer than the longest run inside (CommonMark), so no text can close the span early and
    write HTML; inside a code span nothing is a mention."""
    text = _cut(value if isinstance(value, str) else json.dumps(value, sort_keys=True), 200)
    text = _one_line(text).replace("|", "\\|")
    runs = [len(run) for run in re.findall(r"`+", text)]
    if not runs:
        return f"`{text}`"
    fence = "`" * (max(runs) + 1)
    return f"{fence} {text} {fence}"


def _json(value: Any) -> str:
    return "(absent)" if value is _MISSING else _code(value)


def usd(amount: float, signed: bool = False) -> str:
    rounded = round(amount, 2) + 0.0  # no -0.00
    sign = "+" if signed and rounded >= 0 else "-" if rounded < 0 else ""
    return f"{sign}${abs(rounded):,.2f}"


def _money(amount: float | None, signed: bool = False) -> str:
    """An amount in Markdown text: \\$, since GitHub reads two dollar signs on a line as inline math."""
    return "-" if amount is None else usd(amount, signed).replace("$", "\\$")
