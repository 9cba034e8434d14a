"""Transforms and placeholders: JMESPath (a well-kept, sandboxed expression language: it reads data and
can do nothing else) over the execution's input and the outputs of earlier steps."""

from __future__ import annotations

import json
import re
from typing import Any

import jmespath
from jmespath.exceptions import JMESPathError

PLACEHOLDER = re.compile(r"\{\{\s*(.+?)\s*\}\}")


class TransformError(ValueError):
    pass


def evaluate(expression: str, context: dict[str, Any]) -> Any:
    try:
        return jmespath.search(expression, context)
    except JMESPathError as exc:
        raise TransformError(f"JMESPath {expression!r}: {exc}") from None


def _text(value: Any) -> str:
    """A value embedded in text: a string as itself, anything else as JSON (null, true, {"id": 1})."""
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def render(template: Any, context: dict[str, Any]) -> Any:
    """Fill {{ expression }} placeholders in strings, recursively. A string that is exactly one placeholder
    (one match spanning it all, surrounding blanks aside) becomes the value itself, so numbers stay numbers;
    placeholders within text are replaced by their values as text (see _text)."""
    if isinstance(template, str):
        stripped = template.strip()
        matches = list(PLACEHOLDER.finditer(stripped))
        if len(matches) == 1 and matches[0].span() == (0, len(stripped)):
            return evaluate(matches[0].group(1), context)
        return PLACEHOLDER.sub(lambda m: _text(evaluate(m.group(1), context)), template)
    if isinstance(template, dict):
        return {k: render(v, context) for k, v in template.items()}
    if isinstance(template, list):
        return [render(v, context) for v in template]
    return template
