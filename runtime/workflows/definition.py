"""Workflow definitions: ordered steps, each an HTTP call or a transform, validated by pydantic."""

from __future__ import annotations

import math
import re
from typing import Annotated, Any, Literal

import jmespath
from jmespath.exceptions import JMESPathError
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, HttpUrl, model_validator


def strict_json(value: Any, where: str = "") -> None:
    """Refuse what JSON cannot carry portably and PostgreSQL cannot store (jsonb and text hold no NUL; JSON has
    no NaN or Infinity, which Python's parser accepts): raises ValueError naming where it is."""
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError(f"{where or 'the value'}: NaN and Infinity are not JSON numbers")
    if isinstance(value, str) and "\x00" in value:
        raise ValueError(f"{where or 'the value'}: strings may not contain the NUL character (\\u0000)")
    if isinstance(value, dict):
        for key, item in value.items():
            strict_json(key, f"{where}.{key!r}" if "\x00" not in key else f"{where} (a key)")
            strict_json(item, f"{where}.{key}")
    elif isinstance(value, list):
        for index, item in enumerate(value):
            strict_json(item, f"{where}[{index}]")


STEP_NAME = re.compile(r"^[a-z][a-z0-9_]{0,63}$")


def _step_name(name: str) -> str:
    if not STEP_NAME.fullmatch(name):
        raise ValueError("a step name is a lowercase letter, then up to 63 lowercase letters, digits or '_' (no "
                         "'-': later steps refer to it in JMESPath, where steps.my-step.x is a subtraction)")
    return name


# Checked by _step_name, for its message; the pattern is for the schema.
StepName = Annotated[str, AfterValidator(_step_name), Field(json_schema_extra={"pattern": STEP_NAME.pattern})]


def _jmespath(expression: str) -> str:
    try:
        jmespath.compile(expression)
    except JMESPathError as exc:
        raise ValueError(f"not a valid JMESPath expression: {exc}") from None
    except RecursionError:
        raise ValueError("not a valid JMESPath expression: nested too deeply") from None
    return expression


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Retry(Strict):
    attempts: int = Field(3, ge=1, le=10, description="Tries in all, the first included.")
    backoff: float = Field(0.5, ge=0, le=60, description="Seconds before the second try; doubles after.")


class HttpStep(Strict):
    type: Literal["http"]
    name: StepName
    method: Literal["GET", "POST", "PUT", "PATCH", "DELETE"] = "POST"
    url: HttpUrl
    headers: dict[str, str] = Field(default_factory=dict)
    body: Any = None  # JSON; strings may use {{ input.x }} / {{ steps.y.z }} placeholders (JMESPath)
    timeout: float = Field(10, gt=0, le=300)
    retry: Retry = Field(default_factory=Retry)


class TransformStep(Strict):
    type: Literal["transform"]
    name: StepName
    expression: Annotated[str, AfterValidator(_jmespath)] = Field(min_length=1, max_length=4096,
                                                                  description="JMESPath over {input, steps}.")


Step = Annotated[HttpStep | TransformStep, Field(discriminator="type")]


class Definition(Strict):
    steps: list[Step] = Field(min_length=1, max_length=50)

    @model_validator(mode="after")
    def _unique_names(self) -> Definition:
        names = [s.name for s in self.steps]
        if len(names) != len(set(names)):
            raise ValueError("step names must be unique")
        strict_json(self.model_dump(), "definition")
        return self
