"""Transforms and placeholders: JMESPath (a well-kept, sandboxed expression language: it reads data and
can do nothing else) over the execution's input and the outputs of earlier steps.

Values are bounded as they are built, so one short expression cannot stall a worker: JMESPath shares rather
than copies (`@ | {a: @, b: @}` 23 times is 23 small objects, whose JSON is 185 MB), so the only ways to build
a large value are flattening (`[@, @][]` doubles a list), join() (doubles a string) and to_string() (writes
out the shared structure); each fails past the limit (TooLarge), and every value leaving a step is measured
with bounded_json(), which stops as soon as the limit is passed."""

from __future__ import annotations

import json
import re
from typing import Any

import jmespath
from jmespath import functions
from jmespath.exceptions import JMESPathError
from jmespath.visitor import Options, TreeInterpreter

from .definition import strict_json

PLACEHOLDER = re.compile(r"\{\{\s*(.+?)\s*\}\}")
DEFAULT_LIMIT = 256 * 1024  # bytes of JSON a value may take (engine.Limits.max_output_bytes)


class TransformError(ValueError):
    pass


class TooLarge(TransformError):
    pass


class NotJson(TransformError):
    pass


_ENCODER = json.JSONEncoder(ensure_ascii=False, allow_nan=False, separators=(",", ":"))
_SPACED = json.JSONEncoder(ensure_ascii=False, allow_nan=False)  # values in text: {"id": 1}, as json.dumps


# Nested arrays and objects in any JSON the runtime stores and answers with (an execution's input, a workflow's
# definition, a step's output): the API answers with what was stored, and pydantic's serializer refuses values
# nested past about 250 levels, so a deeper one would be stored once and then answer 500 on every read. 100
# leaves room for the levels the answers wrap it in.
MAX_DEPTH = 100


def too_deep(value: Any, limit: int = MAX_DEPTH) -> bool:
    """Whether `value` nests arrays and objects more than `limit` deep (a scalar is 0 deep, [] is 1). A walk with
    its own stack: the value may be nested far deeper than Python's recursion limit allows a recursive one."""
    pending: list[tuple[Any, int]] = [(value, 0)]
    while pending:
        item, depth = pending.pop()
        if isinstance(item, dict | list):
            if depth + 1 > limit:
                return True
            pending.extend((child, depth + 1) for child in (item.values() if isinstance(item, dict) else item))
    return False


def bounded_json(value: Any, limit: int, what: str = "output", *, spaced: bool = False) -> str:
    """`value` as compact strict JSON, or TooLarge as soon as it passes `limit` bytes (UTF-8): the work done is
    at most about `limit` bytes of encoding, however large the whole would be. NotJson for what JSON cannot
    carry, PostgreSQL cannot store or the API could not answer with: NaN, Infinity, NUL characters, unpaired
    surrogates, other types, nesting past MAX_DEPTH."""
    size, parts = 0, []
    try:
        for chunk in (_SPACED if spaced else _ENCODER).iterencode(value):
            size += len(chunk.encode("utf-8"))
            if size > limit:
                raise TooLarge(f"{what} over {limit} bytes of JSON")
            parts.append(chunk)
        strict_json(value, what)  # NUL characters (the JSON above is at most `limit`: a short walk)
        if too_deep(value):
            raise NotJson(f"{what} is nested more than {MAX_DEPTH} levels of arrays and objects deep")
    except UnicodeEncodeError:
        raise NotJson(f"{what}: strings may not contain unpaired surrogates") from None
    except (ValueError, TypeError) as exc:  # allow_nan=False, strict_json, a type JSON has not
        if isinstance(exc, TransformError):
            raise
        raise NotJson(f"{what} is not strict JSON: {exc}") from None
    except RecursionError:
        raise NotJson(f"{what} is nested too deeply") from None
    return "".join(parts)


class _Functions(functions.Functions):  # type: ignore[misc]
    """JMESPath's functions, with the two that build new strings bounded."""

    limit = DEFAULT_LIMIT

    @functions.signature({"types": []})  # type: ignore[untyped-decorator]
    def _func_to_string(self, arg: Any) -> str:
        return arg if isinstance(arg, str) else bounded_json(arg, self.limit, "to_string()")

    @functions.signature({"types": ["string"]}, {"types": ["array-string"]})  # type: ignore[untyped-decorator]
    def _func_join(self, separator: str, array: list[str]) -> str:
        size = len(separator) * max(0, len(array) - 1) + sum(len(s) for s in array)
        if size > self.limit:
            raise TooLarge(f"join() over {self.limit} characters")
        return separator.join(array)


class _Interpreter(TreeInterpreter):  # type: ignore[misc]
    def __init__(self, limit: int) -> None:
        custom = _Functions()
        custom.limit = limit
        super().__init__(Options(custom_functions=custom))
        self.limit = limit

    def visit_flatten(self, node: dict[str, Any], value: Any) -> Any:
        base = self.visit(node["children"][0], value)
        if not isinstance(base, list):
            return None
        # Each element takes at least two bytes of JSON (one character and a comma).
        if sum(len(e) if isinstance(e, list) else 1 for e in base) * 2 > self.limit:
            raise TooLarge(f"a flattened list over {self.limit} bytes of JSON")
        merged: list[Any] = []
        for element in base:
            if isinstance(element, list):
                merged.extend(element)
            else:
                merged.append(element)
        return merged


def evaluate(expression: str, context: dict[str, Any], limit: int = DEFAULT_LIMIT) -> Any:
    """The expression's value; TransformError when it is not valid, nests too deeply or builds a value over
    `limit` bytes (the value returned may still be larger in JSON: measure it with bounded_json)."""
    try:
        return _Interpreter(limit).visit(jmespath.compile(expression).parsed, context)
    except JMESPathError as exc:
        raise TransformError(f"JMESPath {expression[:200]!r}: {exc}") from None
    except RecursionError:
        raise TransformError(f"JMESPath {expression[:200]!r}: nested too deeply") from None


def _text(value: Any, limit: int) -> str:
    """A value embedded in text: a string as itself, anything else as JSON (null, true, {"id": 1})."""
    return value if isinstance(value, str) else bounded_json(value, limit, "a placeholder's value", spaced=True)


def render(template: Any, context: dict[str, Any], limit: int = DEFAULT_LIMIT) -> Any:
    """Fill {{ expression }} placeholders in strings, recursively. A string that is exactly one placeholder
    (one match spanning it all, surrounding blanks aside) becomes the value itself, so numbers stay numbers;
    placeholders within text are replaced by their values as text (see _text)."""
    if isinstance(template, str):
        stripped = template.strip()
        matches = list(PLACEHOLDER.finditer(stripped))
        if len(matches) == 1 and matches[0].span() == (0, len(stripped)):
            return evaluate(matches[0].group(1), context, limit)
        return PLACEHOLDER.sub(lambda m: _text(evaluate(m.group(1), context, limit), limit), template)
    if isinstance(template, dict):
        return {k: render(v, context, limit) for k, v in template.items()}
    if isinstance(template, list):
        return [render(v, context, limit) for v in template]
    return template

