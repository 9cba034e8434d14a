"""Diagram -> Mermaid (renders in GitHub Markdown), DOT, and SVG through Graphviz's dot."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from typing import Literal

from .model import Diagram, Group, Node

_MERMAID_SHAPES = {"client": ('(["', '"])'), "gateway": ('{{"', '"}}'), "service": ('["', '"]'),
                   "function": ('("', '")'), "queue": ('[["', '"]]'), "database": ('[("', '")]'),
                   "schedule": ('[/"', '"/]'), "topic": ('>"', '"]'), "pipe": ('[\\"', '"\\]')}
_DOT_SHAPES = {"client": "ellipse", "gateway": "hexagon", "service": "box", "function": "box",
               "queue": "box3d", "database": "cylinder", "schedule": "parallelogram", "topic": "note",
               "pipe": "cds"}


def _mermaid_text(text: str) -> str:
    return text.replace('"', "#quot;")


Event = tuple[Literal["node", "open", "close"], int, Node | Group]


def _outline(d: Diagram, parent: str | None = None, depth: int = 1) -> Iterator[Event]:
    """The nesting both formats write: a group's nodes, then its groups, each opened and closed."""
    for node in (n for n in d.nodes if n.group == parent):
        yield "node", depth, node
    for group in (g for g in d.groups if g.parent == parent):
        yield "open", depth, group
        yield from _outline(d, group.id, depth + 1)
        yield "close", depth, group


def mermaid(d: Diagram) -> str:
    lines = ["---", f"title: {d.title}", "---", "flowchart LR"]
    for event, depth, item in _outline(d):
        pad = "    " * depth
        if isinstance(item, Node):
            start, end = _MERMAID_SHAPES[item.shape]
            label = f"<b>{item.label}</b>" + (f"<br/>{item.detail}" if item.detail else "")
            lines.append(f"{pad}{item.id}{start}{_mermaid_text(label)}{end}")
        elif event == "open":
            lines.append(f'{pad}subgraph {item.id}["{_mermaid_text(item.label)}"]')
        else:
            lines.append(f"{pad}end")
    for edge in d.edges:
        arrow = f'-->|"{_mermaid_text(edge.label)}"|' if edge.label else "-->"
        lines.append(f"    {edge.source} {arrow} {edge.target}")
    return "\n".join(lines) + "\n"


def _dot_text(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def dot(d: Diagram) -> str:
    lines = [f"digraph {_dot_text(d.title)} {{", "  rankdir=LR;", f"  label={_dot_text(d.title)}; labelloc=t;",
             '  fontname="Helvetica"; node [fontname="Helvetica", fontsize=11]; edge [fontname="Helvetica", '
             "fontsize=9];"]
    for event, depth, item in _outline(d):
        pad = "  " * depth
        if isinstance(item, Node):
            label = item.label + (f"\n{item.detail}" if item.detail else "")
            lines.append(f"{pad}{item.id} [label={_dot_text(label)}, shape={_DOT_SHAPES[item.shape]}];")
        elif event == "open":
            lines.append(f"{pad}subgraph cluster_{item.id} {{")
            lines.append(f"{pad}  label={_dot_text(item.label)}; style=rounded;")
        else:
            lines.append(f"{pad}}}")
    for edge in d.edges:
        label = f" [label={_dot_text(edge.label)}]" if edge.label else ""
        lines.append(f"  {edge.source} -> {edge.target}{label};")
    return "\n".join(lines) + "\n}\n"


class NoGraphviz(RuntimeError):
    pass


def svg(d: Diagram) -> str:
    executable = shutil.which("dot")
    if executable is None:
        raise NoGraphviz("svg needs Graphviz's dot on PATH (Debian/Ubuntu: apt-get install graphviz); "
                         "--format dot or mermaid need nothing")
    done = subprocess.run([executable, "-Tsvg"], input=dot(d), capture_output=True, text=True, timeout=60)
    if done.returncode != 0:
        first = done.stderr.strip().splitlines()[0] if done.stderr.strip() else f"exit {done.returncode}"
        raise NoGraphviz(f"dot failed: {first}")
    return done.stdout


RENDERERS = {"mermaid": mermaid, "dot": dot, "svg": svg}
