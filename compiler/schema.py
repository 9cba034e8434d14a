"""The JSON Schema of flowbuilder.yaml, generated from the spec models (committed as
schema/flowbuilder.schema.json and kept in sync by a test), and the editor wiring that uses it."""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from .files import write_atomic
from .spec import App

SCHEMA_FILE = "flowbuilder.schema.json"
DIALECT = "http://json-schema.org/draft-07/schema#"


def _schema(model: type[BaseModel], title: str) -> dict[str, Any]:
    schema = model.model_json_schema(by_alias=True, mode="validation", ref_template="#/definitions/{model}")
    # draft-07 keeps yaml-language-server, VS Code and most editors on their best-supported dialect.
    schema["definitions"] = schema.pop("$defs", {})
    _tidy(schema)
    return {"$schema": DIALECT, "title": title, **schema}


def app_schema() -> dict[str, Any]:
    return _schema(App, "Flow Builder application (flowbuilder.yaml)")


def profile_schema() -> dict[str, Any]:
    from .profiles import Profile

    return _schema(Profile, "Flow Builder profile (kind: Profile)")


def _tidy(node: Any) -> None:
    """Two fixes to what pydantic emits, everywhere in the tree:
    - it titles every field after its Python name ('Apiversion'); editors show titles as hover headings,
      so only the descriptions remain;
    - maps with constrained keys become `patternProperties`, which lets any other key through: close them
      with `additionalProperties: false`, as the models are closed."""
    if isinstance(node, dict):
        node.pop("title", None)
        if "patternProperties" in node:
            node.setdefault("additionalProperties", False)
        for key, value in node.items():
            if key not in ("default", "examples", "const", "enum"):
                _tidy(value)
    elif isinstance(node, list):
        for item in node:
            _tidy(item)


def render(schema: dict[str, Any] | None = None) -> str:
    return json.dumps(schema or app_schema(), indent=2, sort_keys=False) + "\n"


def packaged() -> str:
    """The committed schema as installed with the package."""
    return resources.files("flowbuilder.schema").joinpath(SCHEMA_FILE).read_text("utf-8")


def write_vscode(workspace: Path, spec_glob: str = "flowbuilder.yaml") -> list[Path]:
    """Write the schema into the workspace and map it to flowbuilder.yaml in .vscode/settings.json.

    Existing settings are kept; only the yaml.schemas entry for our schema is set.
    """
    schema_path = workspace / SCHEMA_FILE
    settings_path = workspace / ".vscode" / "settings.json"
    settings: dict[str, Any] = {}
    if settings_path.exists():
        try:
            settings = json.loads(settings_path.read_text("utf-8"))
        except json.JSONDecodeError as exc:
            raise ValueError(f"{settings_path}:{exc.lineno}:{exc.colno}: not plain JSON ({exc.msg}); "
                             f"add the yaml.schemas entry by hand") from None
    schemas = settings.setdefault("yaml.schemas", {})
    schemas[f"./{SCHEMA_FILE}"] = [spec_glob, f"**/{spec_glob}"]
    write_atomic(schema_path, render())
    write_atomic(settings_path, json.dumps(settings, indent=2) + "\n")
    return [schema_path, settings_path]
