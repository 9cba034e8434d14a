"""How overlays combine with what they override, said once: maps merge deeply, everything else replaces.

Used for a spec's environment overlays and for profiles (`extends` and per-environment blocks), so both
behave the same way (Copilot's environment overrides work like this).
"""

from __future__ import annotations

from typing import Any

from .diagnostics import Mark, MarkIndex, Path


def deep_merge(base: Any, overlay: Any) -> Any:
    """A new value: overlay's mappings merged key by key into base's; lists and scalars replace."""
    if isinstance(base, dict) and isinstance(overlay, dict):
        merged = dict(base)
        for key, value in overlay.items():
            merged[key] = deep_merge(base[key], value) if key in base else value
        return merged
    return overlay


def rebase_index(index: MarkIndex, source: Path, target: Path) -> MarkIndex:
    """An index where positions under `source` also answer for the same paths under `target`.

    Errors found in a merged environment then point at the overlay line that set the value, and at the
    base line for everything the overlay left alone.
    """

    def moved(table: dict[Path, Mark] | Any) -> dict[Path, Mark]:
        out = dict(table)
        n = len(source)
        for path, mark in table.items():
            if path[:n] == source and len(path) > n:
                out[target + path[n:]] = mark
        return out

    return MarkIndex(index.file, moved(index.keys), moved(index.values))
