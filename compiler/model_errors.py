"""Pydantic validation errors -> Diagnostics with data paths and sentences a user can act on."""

from __future__ import annotations

import difflib
import re
import types
import typing
from collections.abc import Iterator
from typing import Any

from pydantic import BaseModel, ValidationError

from .diagnostics import Diagnostic, Path
from .scalars import PATTERN_HELP, show

_TYPE_NAMES = {
    "int_type": "integer", "int_parsing": "integer", "string_type": "string", "bool_type": "boolean",
    "dict_type": "mapping", "model_type": "mapping", "model_attributes_type": "mapping", "list_type": "list",
    "float_type": "number",
}
# Errors we raise ourselves with a finished sentence.
_OWN = {"duration_type", "duration_format", "image_or_runtime", "cron_or_rate", "scaling_bounds"}


def did_you_mean(word: str, choices: typing.Iterable[str]) -> str:
    options = sorted(choices)
    close = difflib.get_close_matches(word, options, n=1, cutoff=0.6)
    if close:
        return f"; did you mean '{close[0]}'?"
    if options and len(options) <= 12:
        return "; expected one of: " + ", ".join(options)
    return ""


def _data_path(data: Any, loc: tuple[str | int, ...]) -> tuple[Path, bool]:
    """Map pydantic's loc onto the document: drop union tags, stop at '[key]' (an error about a key)."""
    path: list[str | int] = []
    current: Any = data
    for item in loc:
        if item == "[key]":
            return tuple(path), True
        in_dict = isinstance(current, dict) and item in current
        in_list = isinstance(current, list) and isinstance(item, int) and 0 <= item < len(current)
        if in_dict or in_list:
            current = current[item]
        elif isinstance(current, dict) and current.get("type") == item:
            continue  # discriminated-union tag that pydantic adds to loc
        else:
            current = None
        path.append(item)
    return tuple(path), False


def _strip(annotation: Any) -> list[Any]:
    """The candidate types behind Optional/Union/Annotated."""
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return _strip(typing.get_args(annotation)[0])
    if origin in (typing.Union, types.UnionType):
        out = []
        for arg in typing.get_args(annotation):
            out.extend(_strip(arg))
        return out
    return [annotation]


def model_at(root: type[BaseModel], data: Any, path: Path) -> type[BaseModel] | None:
    """The model class that validates the mapping at `path` (to list its allowed keys)."""
    candidates: list[Any] = [root]
    current = data
    for part in path:
        current = current.get(part) if isinstance(current, dict) else None
        nxt: list[Any] = []
        for cand in candidates:
            if isinstance(cand, type) and issubclass(cand, BaseModel):
                for name, info in cand.model_fields.items():
                    if (info.alias or name) == part:
                        nxt.extend(_strip(info.annotation))
            elif typing.get_origin(cand) is dict:
                nxt.extend(_strip(typing.get_args(cand)[1]))
        candidates = _pick(nxt, current)
    models = [c for c in candidates if isinstance(c, type) and issubclass(c, BaseModel)]
    return models[0] if models else None


def _pick(candidates: list[Any], value: Any) -> list[Any]:
    """Among union members, keep the model whose `type` literal matches the value's type field."""
    models = [c for c in candidates if isinstance(c, type) and issubclass(c, BaseModel)]
    if len(models) > 1 and isinstance(value, dict):
        for model in models:
            field = model.model_fields.get("type")
            if field is not None and value.get("type") in typing.get_args(field.annotation):
                return [model]
    return candidates


def _not_one_of(value: Any, expected: str) -> str:
    words = re.findall(r"'([^']*)'", expected)
    close = difflib.get_close_matches(value, words, n=1) if isinstance(value, str) else []
    return f"{show(value)} is not one of {expected}" + (f"; did you mean '{close[0]}'?" if close else "")


def _message(error: Any, root: type[BaseModel], data: Any, path: Path) -> str:
    kind, ctx, value = error["type"], error.get("ctx") or {}, error.get("input")
    if kind in _OWN or (kind in {"less_than_equal", "greater_than_equal"} and "shown" in ctx):
        return str(error["msg"])
    if kind == "missing":
        return "required field is missing"
    if kind == "extra_forbidden":
        model = model_at(root, data, path[:-1])
        allowed = [info.alias or name for name, info in model.model_fields.items()] if model else []
        return f"unknown field {show(path[-1])}{did_you_mean(str(path[-1]), allowed)}"
    if kind in _TYPE_NAMES:
        hint = " (quote it)" if _TYPE_NAMES[kind] == "string" and isinstance(value, int | float | bool) else ""
        return f"{show(value)} is not of type '{_TYPE_NAMES[kind]}'{hint}"
    if kind == "literal_error":
        expected = str(ctx.get("expected", ""))
        return _not_one_of(value, expected)
    if kind == "string_pattern_mismatch":
        pattern = str(ctx.get("pattern"))
        return f"{show(value)} {PATTERN_HELP.get(pattern, 'does not match ' + pattern)}"
    if kind == "greater_than_equal":
        return f"{show(value)} is less than the minimum of {ctx['ge']}"
    if kind == "less_than_equal":
        return f"{show(value)} is greater than the maximum of {ctx['le']}"
    if kind == "too_long":
        return f"has more than {ctx.get('max_length')} {'characters' if isinstance(value, str) else 'items'}"
    if kind == "string_too_long":
        return f"{show(value)} is longer than {ctx.get('max_length')} characters"
    if kind == "too_short":
        return f"needs at least {ctx.get('min_length')} item(s)"
    if kind == "union_tag_invalid":
        return _not_one_of(ctx.get("tag"), str(ctx.get("expected_tags")))
    if kind == "union_tag_not_found":
        return "required field 'type' is missing ('web' or 'worker')"
    return str(error["msg"])


def diagnostics_from(exc: ValidationError, root: type[BaseModel], data: Any) -> Iterator[Diagnostic]:
    for error in exc.errors(include_url=False):
        path, at_key = _data_path(data, tuple(error["loc"]))
        if error["type"] in {"union_tag_invalid", "union_tag_not_found"}:
            path = (*path, "type")
        at_key = at_key or error["type"] == "extra_forbidden"
        yield Diagnostic(_message(error, root, data, path), path=path, at_key=at_key)
