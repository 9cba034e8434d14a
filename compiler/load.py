"""YAML -> plain data + a path -> (line, column) index.

PyYAML's own constructors accept duplicate keys silently, expand aliases without bound and recurse without
limit, so we compose nodes (keeping marks) and build the data ourselves, counting as we go. The pure-Python
composer is used on purpose: the C one crashes the interpreter on deeply nested input.
"""

from __future__ import annotations

import bisect
import re
from dataclasses import dataclass
from pathlib import Path as FsPath
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from .diagnostics import Diagnostic, Located, Mark, MarkIndex, Path

MAX_BYTES = 1024 * 1024  # a spec is a few KiB; anything near this is a mistake or an attack
MAX_NODES = 100_000  # nodes after alias expansion: stops "billion laughs" early, in bounded memory
MAX_DEPTH = 64  # nesting depth while composing (the composer recurses)
MERGE_TAG = "tag:yaml.org,2002:merge"


@dataclass(frozen=True)
class Document:
    data: dict[str, Any]
    index: MarkIndex
    # Problems found while loading that do not stop validation (duplicate keys, non-string keys).
    diagnostics: tuple[Diagnostic, ...]


_LINE_BREAK = re.compile(r"\r\n|\r|\n")


class _Lines:
    """Character offset -> 1-based line and column, counting lines as editors do (LF, CRLF, CR).

    PyYAML also breaks lines at NEL and the Unicode line and paragraph separators; its own line numbers
    would then disagree with every editor, so positions are recomputed from offsets."""

    def __init__(self, text: str) -> None:
        self.starts = [0, *(m.end() for m in _LINE_BREAK.finditer(text))]

    def mark(self, offset: int) -> Mark:
        line = bisect.bisect_right(self.starts, offset) - 1
        return Mark(line + 1, offset - self.starts[line] + 1)

    def at(self, yaml_mark: Any) -> Mark:
        return self.mark(yaml_mark.index)


class _Loader(yaml.SafeLoader):
    """SafeLoader that refuses to compose deeper than MAX_DEPTH."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._depth = 0

    def compose_node(self, parent: Node | None, index: Any) -> Node | None:
        self._depth += 1
        try:
            if self._depth > MAX_DEPTH:
                raise yaml.composer.ComposerError(
                    None, None, f"nesting is deeper than {MAX_DEPTH} levels",
                    self.peek_event().start_mark,  # type: ignore[no-untyped-call]
                )
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1


def read_text(file: str, raw: bytes) -> str:
    """Decode UTF-8 (a BOM is allowed) or fail at the first bad byte."""
    if len(raw) > MAX_BYTES:
        raise Located(Diagnostic(f"file is {len(raw)} bytes; the limit is {MAX_BYTES} bytes (1 MiB)",
                                 file=file, mark=Mark(1, 1)))
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        before = raw[: exc.start]
        line = before.count(b"\n") + 1
        column = len(before[before.rfind(b"\n") + 1:].decode("utf-8", errors="replace")) + 1
        raise Located(Diagnostic(f"file is not valid UTF-8 (byte 0x{raw[exc.start]:02x})",
                                 file=file, mark=Mark(line, column))) from None


def _syntax_error(file: str, exc: yaml.YAMLError, lines: _Lines) -> Located:
    if isinstance(exc, yaml.reader.ReaderError):
        return Located(Diagnostic(f"YAML syntax error: character {chr(exc.character)!r} is not allowed",
                                  file=file, mark=lines.mark(exc.position)))
    assert isinstance(exc, yaml.MarkedYAMLError)
    problem = exc.problem or "invalid YAML"
    mark = exc.problem_mark or exc.context_mark
    if "'\\t'" in problem:
        problem = "a tab character is used for indentation; YAML indents with spaces"
    elif "expected a single document" in (exc.context or ""):
        problem = "found a second YAML document; flowbuilder.yaml holds exactly one"
    else:
        problem = "YAML syntax error: " + problem
        if exc.context:
            problem += f" ({exc.context})"
    return Located(Diagnostic(problem, file=file, mark=lines.at(mark) if mark else Mark(1, 1)))


class _Builder:
    """Turns a node graph into data, recording marks and counting expanded nodes."""

    def __init__(self, file: str, loader: _Loader, lines: _Lines) -> None:
        self.file = file
        self.loader = loader
        self.lines = lines
        self.count = 0
        self.keys: dict[Path, Mark] = {}
        self.values: dict[Path, Mark] = {}
        self.problems: list[Diagnostic] = []

    def build(self, node: Node, path: Path) -> Any:
        self.count += 1
        if self.count > MAX_NODES:
            raise Located(Diagnostic(
                f"document expands to more than {MAX_NODES} nodes (aliases referring to aliases?)",
                file=self.file, mark=self.lines.at(node.start_mark)))
        if len(path) > MAX_DEPTH:  # recursive aliases (&a [*a]) never end
            raise Located(Diagnostic(f"nesting is deeper than {MAX_DEPTH} levels (a recursive alias?)",
                                     file=self.file, mark=self.lines.at(node.start_mark)))
        self.values.setdefault(path, self.lines.at(node.start_mark))
        if isinstance(node, ScalarNode):
            return self.loader.construct_object(node)
        if isinstance(node, SequenceNode):
            return [self.build(item, (*path, i)) for i, item in enumerate(node.value)]
        assert isinstance(node, MappingNode)
        return self._mapping(node, path)

    def _mapping(self, node: MappingNode, path: Path) -> dict[str, Any]:
        out: dict[str, Any] = {}
        merged: list[dict[str, Any]] = []
        for key_node, value_node in node.value:
            if key_node.tag == MERGE_TAG:
                merged.extend(self._merge_sources(value_node, path))
                continue
            key = self.loader.construct_object(key_node) if isinstance(key_node, ScalarNode) else None
            if not isinstance(key, str):
                shown = key_node.value if isinstance(key_node, ScalarNode) else "a collection"
                self.problems.append(Diagnostic(
                    f"key {shown!r} is not a string; quote it", path=path, file=self.file,
                    mark=self.lines.at(key_node.start_mark)))
                continue
            child = (*path, key)
            if key in out:
                first = self.keys[child]
                self.problems.append(Diagnostic(
                    f"duplicate key {key!r} (first defined at line {first.line})", path=child,
                    file=self.file, mark=self.lines.at(key_node.start_mark)))
                continue
            self.keys[child] = self.lines.at(key_node.start_mark)
            out[key] = self.build(value_node, child)
        for source in merged:  # explicit keys win over merged ones, as YAML's merge key says
            for key, value in source.items():
                out.setdefault(key, value)
        return out

    def _merge_sources(self, node: Node, path: Path) -> list[dict[str, Any]]:
        nodes = node.value if isinstance(node, SequenceNode) else [node]
        sources = []
        for item in nodes:
            value = self.build(item, path)
            if not isinstance(value, dict):
                raise Located(Diagnostic("a merge key (<<) takes a mapping or a list of mappings",
                                         path=path, file=self.file, mark=self.lines.at(item.start_mark)))
            sources.append(value)
        return sources


def load_text(text: str, file: str) -> Document:
    """Parse one YAML document that must be a mapping."""
    lines = _Lines(text)
    try:
        loader = _Loader(text)
    except yaml.YAMLError as exc:  # the reader checks the first characters on construction
        raise _syntax_error(file, exc, lines) from None
    try:
        try:
            node = loader.get_single_node()
        except RecursionError:
            raise Located(Diagnostic(f"nesting is deeper than {MAX_DEPTH} levels", file=file,
                                     mark=Mark(1, 1))) from None
        except yaml.YAMLError as exc:
            raise _syntax_error(file, exc, lines) from None
        if node is None:
            raise Located(Diagnostic("file is empty; run `fbc init` for a starter flowbuilder.yaml",
                                     file=file, mark=Mark(1, 1)))
        if not isinstance(node, MappingNode):
            raise Located(Diagnostic("the document must be a mapping (apiVersion, kind, metadata, spec)",
                                     file=file, mark=lines.at(node.start_mark)))
        builder = _Builder(file, loader, lines)
        try:
            data = builder.build(node, ())
        except yaml.YAMLError as exc:  # a scalar that fails to construct, e.g. a bad !!timestamp
            raise _syntax_error(file, exc, lines) from None
    finally:
        loader.dispose()
    return Document(data=data, index=MarkIndex(file, builder.keys, builder.values),
                    diagnostics=tuple(builder.problems))


def load_file(path: str | FsPath, display: str | None = None) -> Document:
    """Read, decode and parse a spec file; every failure is a Located diagnostic."""
    name = display or str(path)
    fs_path = FsPath(path)
    try:
        size = fs_path.stat().st_size
        if size > MAX_BYTES:  # refuse before reading a huge file into memory
            raise Located(Diagnostic(f"file is {size} bytes; the limit is {MAX_BYTES} bytes (1 MiB)",
                                     file=name, mark=Mark(1, 1)))
        raw = fs_path.read_bytes()
    except OSError as exc:
        raise OSError(f"{name}: {exc.strerror or exc}") from None
    return load_text(read_text(name, raw), name)
