"""Diagnostics: what went wrong, where, and the three ways we print it.

Checks and loaders return a path into the document; only `locate` turns a path into file:line:column,
through the index that the loader built from YAML marks (cfn-lint's rules work the same way).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

PathPart = str | int
Path = tuple[PathPart, ...]
Severity = Literal["error", "warning"]


@dataclass(frozen=True, order=True)
class Mark:
    """A 1-based position in a file."""

    line: int
    column: int


@dataclass(frozen=True)
class Diagnostic:
    message: str
    path: Path = ()
    severity: Severity = "error"
    # Where the value (or, for keys, the key) sits; None until `locate` fills it.
    file: str = ""
    mark: Mark | None = None
    # Point at the key instead of the value (unknown fields, duplicate keys, bad names).
    at_key: bool = field(default=False, compare=False)

    def sort_key(self) -> tuple[str, int, int, str]:
        mark = self.mark or Mark(0, 0)
        return (self.file, mark.line, mark.column, self.message)


class Invalid(Exception):
    """Located diagnostics that stop the pipeline (the input cannot go further)."""

    def __init__(self, diagnostics: list[Diagnostic]) -> None:
        super().__init__("; ".join(d.message for d in diagnostics))
        self.diagnostics = diagnostics


class Located(Invalid):
    """One located diagnostic where no further checking makes sense (unreadable file, broken YAML)."""

    def __init__(self, diagnostic: Diagnostic) -> None:
        super().__init__([diagnostic])


def dotted(path: Path) -> str:
    """spec.services.api.scaling.min; list items as [3]; unprintable keys escaped to keep one line."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            text = part if part.isprintable() else part.encode("unicode_escape").decode("ascii")
            out += ("." if out else "") + text
    return out


@dataclass(frozen=True)
class MarkIndex:
    """Positions of every key and value in a loaded document, by path."""

    file: str
    keys: Mapping[Path, Mark]
    values: Mapping[Path, Mark]

    def locate(self, diagnostic: Diagnostic) -> Diagnostic:
        """Fill file and mark from the nearest enclosing path that has a position."""
        if diagnostic.mark is not None:
            return diagnostic
        path = diagnostic.path
        table = self.keys if diagnostic.at_key else self.values
        mark = table.get(path)
        while mark is None and path:
            # A missing field sits at its parent; the parent's key is the better anchor.
            path = path[:-1]
            mark = self.keys.get(path) or self.values.get(path)
        return Diagnostic(
            message=diagnostic.message,
            path=diagnostic.path,
            severity=diagnostic.severity,
            file=self.file,
            mark=mark or Mark(1, 1),
            at_key=diagnostic.at_key,
        )


def finalize(diagnostics: Iterable[Diagnostic], index: MarkIndex) -> list[Diagnostic]:
    """Locate, de-duplicate and sort by position (SAM collects first, reports once)."""
    seen: set[tuple[str, int, int, str, Path]] = set()
    out: list[Diagnostic] = []
    for diag in diagnostics:
        located = index.locate(diag)
        assert located.mark is not None
        key = (located.file, located.mark.line, located.mark.column, located.message, located.path)
        if key not in seen:
            seen.add(key)
            out.append(located)
    return sorted(out, key=Diagnostic.sort_key)


def _where(diag: Diagnostic) -> str:
    mark = diag.mark or Mark(1, 1)
    return f"{diag.file}:{mark.line}:{mark.column}"


def format_text(diagnostics: Sequence[Diagnostic]) -> str:
    lines = []
    for diag in diagnostics:
        prefix = f"{dotted(diag.path)}: " if diag.path else ""
        tag = "warning: " if diag.severity == "warning" else ""
        lines.append(f"{_where(diag)}: {tag}{prefix}{diag.message}")
    return "\n".join(lines)


def format_json(diagnostics: Sequence[Diagnostic]) -> str:
    import json
    items = [
        {
            "file": d.file,
            "line": (d.mark or Mark(1, 1)).line,
            "column": (d.mark or Mark(1, 1)).column,
            "path": dotted(d.path),
            "severity": d.severity,
            "message": d.message,
        }
        for d in diagnostics
    ]
    return json.dumps({"valid": not any(d.severity == "error" for d in diagnostics), "diagnostics": items},
                      indent=2)


def _gh_escape(text: str, *, prop: bool = False) -> str:
    # GitHub workflow-command escaping: data escapes %, CR, LF; properties also ':' and ','.
    text = text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")
    if prop:
        text = text.replace(":", "%3A").replace(",", "%2C")
    return text


def format_github(diagnostics: Sequence[Diagnostic]) -> str:
    lines = []
    for diag in diagnostics:
        mark = diag.mark or Mark(1, 1)
        title = dotted(diag.path) or "flowbuilder"
        props = (f"file={_gh_escape(diag.file, prop=True)},line={mark.line},col={mark.column},"
                 f"title={_gh_escape(title, prop=True)}")
        lines.append(f"::{diag.severity} {props}::{_gh_escape(diag.message)}")
    return "\n".join(lines)


FORMATTERS = {"text": format_text, "json": format_json, "github": format_github}
