"""Property test: mutated specs never crash fbc; every outcome is valid or errors with a real location."""

from __future__ import annotations

import copy
import re
from typing import Any

import jsonschema
import yaml
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from conftest import REPO
from flowbuilder.compiler import load
from flowbuilder.compiler.diagnostics import Invalid
from flowbuilder.compiler.profiles import resolve
from flowbuilder.compiler.schema import app_schema
from flowbuilder.compiler.validate import validate_document

BASE = load.load_file(REPO / "flowbuilder.yaml").data
SCHEMA = jsonschema.Draft7Validator(app_schema())
PROFILES = {None: None, "ultra": resolve("ultra", "prod"), "standard": resolve("standard", "prod")}

scalars = st.one_of(
    st.none(), st.booleans(), st.integers(min_value=-(2**70), max_value=2**70), st.floats(allow_nan=True),
    st.text(max_size=20), st.sampled_from(["15m", "0", "web", "worker", "api", "256", "? * *", "rate(1 day)",
                                           "/a/b", "Europe/Berlin", "fifo", "*", "&x", "!!str"]),
)
values = st.recursive(scalars, lambda inner: st.one_of(st.lists(inner, max_size=3),
                                                       st.dictionaries(st.text(max_size=8), inner, max_size=3)),
                      max_leaves=6)


def _paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix]
    if isinstance(node, dict):
        for key, value in node.items():
            out += _paths(value, (*prefix, key))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            out += _paths(value, (*prefix, i))
    return out


def _parent(data: Any, path: tuple[Any, ...]) -> Any:
    for part in path[:-1]:
        data = data[part]
    return data


@st.composite
def mutated_specs(draw: st.DrawFn) -> str:
    data = copy.deepcopy(BASE)
    for _ in range(draw(st.integers(min_value=1, max_value=4))):
        paths = [p for p in _paths(data) if p]
        if not paths:
            break
        path = draw(st.sampled_from(paths))
        parent, last = _parent(data, path), path[-1]
        action = draw(st.sampled_from(["replace", "delete", "add-key", "rename", "wrap"]))
        if action == "replace":
            parent[last] = draw(values)
        elif action == "delete":
            del parent[last]
        elif action == "add-key" and isinstance(parent, dict):
            parent[draw(st.text(min_size=1, max_size=12))] = draw(values)
        elif action == "rename" and isinstance(parent, dict):
            parent[draw(st.text(min_size=1, max_size=12))] = parent.pop(last)
        elif action == "wrap":
            parent[last] = draw(st.sampled_from([[parent[last]], {"x": parent[last]}]))
    text = yaml.safe_dump(data, sort_keys=False, allow_unicode=True)
    if draw(st.booleans()):  # also damage the text itself, for the loader
        at = draw(st.integers(min_value=0, max_value=len(text)))
        text = text[:at] + draw(st.sampled_from(["\t", ":", "- ", "{", "]", "\n  x", "&a", "*a", "'", "#"])) + text[at:]
    return text


@settings(max_examples=2000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=mutated_specs(), profile=st.sampled_from(list(PROFILES)),
       env=st.sampled_from([None, "dev", "prod", "qa"]))
def test_mutated_specs_are_valid_or_located(text: str, profile: str | None, env: str | None) -> None:
    lines = len(re.split(r"\r\n|\r|\n", text))  # as editors count them
    try:
        doc = load.load_text(text, "flowbuilder.yaml")
        result = validate_document(doc, environment=env, profile=PROFILES[profile])
        diagnostics, valid = result.diagnostics, result.valid
    except Invalid as exc:
        diagnostics, valid = exc.diagnostics, False
    event("valid" if valid else "invalid")
    if valid:
        assert result.app is not None
        # What fbc accepts, an editor must not flag.
        assert [e.message for e in SCHEMA.iter_errors(doc.data)] == []
        return
    assert diagnostics
    for diag in diagnostics:
        assert diag.file == "flowbuilder.yaml"
        assert diag.mark is not None and 1 <= diag.mark.line <= lines and diag.mark.column >= 1
        assert diag.message and "\n" not in diag.message
