"""Diagram -> Mermaid (renders in GitHub Markdown), DOT, and SVG through Graphviz's dot."""

from __future__ import annotations

import shutil
import subprocess

from .model import Diagram, Group, Node

_MERMAID_SHAPES = {"client": ('(["', '"])'), "gateway": ('{{"', '"}}'), "service": ('["', '"]'),
                   "function": ('("', '")'), "queue": ('[["', '"]]'), "database": ('[("', '")]'),
                   "schedule": ('[/"', '"/]'), "topic": ('>"', '"]'), "pipe": ('[\\"', '"\\]')}
_DOT_SHAPES = {"client": "ellipse", "gateway": "hexagon", "service": "box", "function": "box",
               "queue": "box3d", "database": "cylinder", "schedule": "parallelogram", "topic": "note",
               "pipe": "cds"}


def _mermaid_text(text: str) -> str:
    return text.replace('"', "#quot;")


def _children(d: Diagram, parent: str | None) -> tuple[list[Group], list[Node]]:
    return [g for g in d.groups if g.parent == parent], [n for n in d.nodes if n.group == parent]


def mermaid(d: Diagram) -> str:
    lines = ["---", f"title: {d.title}", "---", "flowchart LR"]

    def emit(parent: str | None, depth: int) -> None:
        groups, nodes = _children(d, parent)
        pad = "    " * depth
        for node in nodes:
            start, end = _MERMAID_SHAPES[node.shape]
            label = f"<b>{node.label}</b>" + (f"<br/>{node.detail}" if node.detail else "")
            lines.append(f"{pad}{node.id}{start}{_mermaid_text(label)}{end}")
        for group in groups:
            lines.append(f'{pad}subgraph {group.id}["{_mermaid_text(group.label)}"]')
            emit(group.id, depth + 1)
            lines.append(f"{pad}end")

    emit(None, 1)
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

    def emit(parent: str | None, depth: int) -> None:
        groups, nodes = _children(d, parent)
        pad = "  " * depth
        for node in nodes:
            label = node.label + (f"\n{node.detail}" if node.detail else "")
            lines.append(f"{pad}{node.id} [label={_dot_text(label)}, shape={_DOT_SHAPES[node.shape]}];")
        for group in groups:
            lines.append(f"{pad}subgraph cluster_{group.id} {{")
            lines.append(f"{pad}  label={_dot_text(group.label)}; style=rounded;")
            emit(group.id, depth + 1)
            lines.append(f"{pad}}}")

    emit(None, 1)
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
