"""Templates and definitions without a database: placeholders, step names, JMESPath checked when saved."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from flowbuilder.runtime.workflows.definition import Definition
from flowbuilder.runtime.workflows.transform import render

CONTEXT: dict[str, Any] = {"input": {"a": "x", "b": 2, "user": {"id": 1}, "none": None, "yes": True},
                           "steps": {"call": {"n": 3}}}


def test_two_placeholders_in_one_string_are_two_expressions() -> None:
    assert render("{{ input.a }}-{{ input.b }}", CONTEXT) == "x-2"
    assert render("{{input.a}}{{input.a}}", CONTEXT) == "xx"


def test_a_whole_placeholder_keeps_the_value_type() -> None:
    assert render("{{ input.b }}", CONTEXT) == 2
    assert render("  {{ steps.call }} ", CONTEXT) == {"n": 3}
    assert render({"list": ["{{ input.none }}", "{{ input.yes }}"]}, CONTEXT) == {"list": [None, True]}


def test_values_embedded_in_text_render_as_json() -> None:
    assert render("Hello {{ input.user }}", CONTEXT) == 'Hello {"id": 1}'
    assert render("v={{ input.none }}, ok={{ input.yes }}, n={{ input.b }}", CONTEXT) == "v=null, ok=true, n=2"
    assert render("name: {{ input.a }}", CONTEXT) == "name: x"  # strings as themselves, unquoted


@pytest.mark.parametrize("text", ["no placeholders", "", "{ input.a }"])
def test_text_without_placeholders_is_unchanged(text: str) -> None:
    assert render(text, CONTEXT) == text


def test_a_step_name_with_a_hyphen_is_refused_saying_why() -> None:
    steps = [{"type": "transform", "name": "my-step", "expression": "input"}]
    with pytest.raises(ValidationError, match=r"steps\.my-step\.x is a subtraction"):
        Definition.model_validate({"steps": steps})
    assert Definition.model_validate({"steps": [{**steps[0], "name": "my_step"}]}).steps[0].name == "my_step"


def test_a_transform_expression_is_compiled_when_saved() -> None:
    with pytest.raises(ValidationError, match="not a valid JMESPath expression"):
        Definition.model_validate({"steps": [{"type": "transform", "name": "t", "expression": "steps.["}]})
