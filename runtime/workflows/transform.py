"""Transforms and placeholders: JMESPath (a well-kept, sandboxed expression language: it reads data and
can do nothing else) over the execution's input and the outputs of earlier steps."""

from __future__ import annotations

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


def render(template: Any, context: dict[str, Any]) -> Any:
    """Fill {{ expression }} placeholders in strings, recursively; a string that is one placeholder becomes
    the value itself (so numbers stay numbers)."""
    if isinstance(template, str):
        whole = PLACEHOLDER.fullmatch(template.strip())
        if whole:
            return evaluate(whole.group(1), context)
        return PLACEHOLDER.sub(lambda m: str(evaluate(m.group(1), context)), template)
    if isinstance(template, dict):
        return {k: render(v, context) for k, v in template.items()}
    if isinstance(template, list):
        return [render(v, context) for v in template]
    return template
