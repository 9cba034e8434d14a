"""The committed JSON Schema: generated from the models, complete, and in agreement with them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from pydantic import ValidationError

from conftest import CORPUS, REPO, run_fbc
from flowbuilder.compiler import load
from flowbuilder.compiler.diagnostics import Invalid
from flowbuilder.compiler.schema import app_schema, packaged, render
from flowbuilder.compiler.spec import App

COMMITTED = REPO / "schema" / "flowbuilder.schema.json"
# Model errors that JSON Schema expresses too: the schema must reject these documents as well.
SCHEMA_EXPRESSIBLE = {"extra_forbidden", "missing", "literal_error", "int_type", "string_type", "bool_type",
                      "dict_type", "model_type", "list_type", "string_pattern_mismatch", "union_tag_invalid",
                      "union_tag_not_found", "greater_than_equal", "less_than_equal"}


def test_committed_schema_is_generated_from_the_models() -> None:
    assert COMMITTED.read_text("utf-8") == render(), "run: fbc schema -o schema/flowbuilder.schema.json"


def test_installed_package_ships_the_committed_schema() -> None:
    assert packaged() == COMMITTED.read_text("utf-8")


def test_fbc_schema_prints_it() -> None:
    result = run_fbc("schema")
    assert result.exit_code == 0
    assert json.loads(result.stdout) == app_schema()


def test_schema_is_valid_draft7() -> None:
    jsonschema.Draft7Validator.check_schema(app_schema())


def _properties(node: Any, where: str = "#") -> list[tuple[str, dict[str, Any]]]:
    found = []
    if isinstance(node, dict):
        for name, prop in node.get("properties", {}).items():
            found.append((f"{where}/{name}", prop))
        for key, value in node.items():
            if key not in ("default", "examples", "const", "enum"):
                found += _properties(value, f"{where}/{key}")
    elif isinstance(node, list):
        for i, item in enumerate(node):
            found += _properties(item, f"{where}/{i}")
    return found


def test_every_property_has_a_description() -> None:
    props = _properties(app_schema())
    assert len(props) > 80
    missing = [where for where, prop in props if not prop.get("description")]
    assert missing == []


def test_enums_defaults_and_examples_are_present() -> None:
    defs = app_schema()["definitions"]
    assert defs["WebService"]["properties"]["cpu"]["enum"] == [256, 512, 1024, 2048, 4096, 8192, 16384]
    assert defs["Queue"]["properties"]["visibilityTimeout"]["default"] == 900
    assert defs["Schedule"]["properties"]["timezone"]["examples"] == ["Europe/Berlin"]
    services = defs["AppSpec"]["properties"]["services"]
    assert services["additionalProperties"] is False
    assert [ref["$ref"] for ref in next(iter(services["patternProperties"].values()))["oneOf"]] == [
        "#/definitions/WebService", "#/definitions/WorkerService"]


def _documents() -> list[tuple[str, dict[str, Any]]]:
    docs = [("flowbuilder.yaml", load.load_file(REPO / "flowbuilder.yaml").data)]
    for case in sorted(CORPUS.glob("*.yaml")):
        try:
            doc = load.load_file(case)
        except Invalid:
            continue
        if not doc.diagnostics:
            docs.append((case.stem, doc.data))
    return docs


@pytest.mark.parametrize(("name", "data"), _documents(), ids=[n for n, _ in _documents()])
def test_schema_and_models_agree(name: str, data: dict[str, Any]) -> None:
    validator = jsonschema.Draft7Validator(app_schema())
    schema_errors = list(validator.iter_errors(data))
    try:
        App.model_validate(data)
    except ValidationError as exc:
        # Durations written as strings ('13h') are range-checked by the model only.
        kinds = {e["type"] for e in exc.errors() if not isinstance(e["input"], str) or "_than_" not in e["type"]}
        if kinds & SCHEMA_EXPRESSIBLE:
            assert schema_errors, f"{name}: the model rejects it ({kinds}), the schema accepts it"
        return
    assert schema_errors == [], f"{name}: valid for fbc but an editor would flag it"


def test_vscode_mapping_merges_existing_settings(tmp_path: Path) -> None:
    settings = tmp_path / ".vscode" / "settings.json"
    settings.parent.mkdir()
    settings.write_text(json.dumps({"editor.tabSize": 2}), "utf-8")
    result = run_fbc("schema", "--vscode", str(tmp_path))
    assert result.exit_code == 0, result.output
    written = json.loads(settings.read_text("utf-8"))
    assert written == {"editor.tabSize": 2,
                       "yaml.schemas": {"./flowbuilder.schema.json": ["flowbuilder.yaml", "**/flowbuilder.yaml"]}}
    assert (tmp_path / "flowbuilder.schema.json").read_text("utf-8") == render()


def test_vscode_mapping_refuses_settings_with_comments(tmp_path: Path) -> None:
    settings = tmp_path / ".vscode" / "settings.json"
    settings.parent.mkdir()
    settings.write_text('{\n  // mine\n  "a": 1\n}\n', "utf-8")
    result = run_fbc("schema", "--vscode", str(tmp_path))
    assert result.exit_code == 2
    assert "settings.json:2:3: not plain JSON" in result.stderr
    assert settings.read_text("utf-8") == '{\n  // mine\n  "a": 1\n}\n'


def test_committed_profile_schema_is_current() -> None:
    from flowbuilder.compiler.schema import profile_schema

    assert (REPO / "schema" / "profile.schema.json").read_text("utf-8") == render(profile_schema()), (
        "run: fbc schema --profile -o schema/profile.schema.json")


def test_builtin_profiles_match_their_schema() -> None:
    from flowbuilder.compiler.schema import profile_schema

    validator = jsonschema.Draft7Validator(profile_schema())
    for name in ("standard", "ultra"):
        data = load.load_file(REPO / "profiles" / f"{name}.yaml").data
        assert [e.message for e in validator.iter_errors(data)] == []


def test_environment_overlays_accept_exactly_what_their_base_fields_accept() -> None:
    """Overlays are derived (spec.partial), not hand-copied: each overlay field's schema is its base field's,
    made optional, so an environment can neither set what the base refuses nor be refused what it allows."""
    from flowbuilder.compiler import spec

    def shape(model: type, field: str) -> Any:
        node = model.model_json_schema(by_alias=False)["properties"][field]
        node = {k: v for k, v in node.items() if k not in ("description", "default", "examples", "title")}
        options = node.pop("anyOf", None)
        return next(o for o in options if o != {"type": "null"}) if options else node

    pairs = [(spec.ServiceOverlay, spec.ServiceBase, f) for f in ("image", "cpu", "memory", "command")]
    pairs += [(spec.ServiceOverlay, spec.WorkerService, f) for f in ("timeout", "concurrency")]
    pairs += [(spec.ScalingOverlay, spec.Scaling, f) for f in ("min", "max", "target_cpu", "target_memory")]
    pairs += [(spec.QueueOverlay, spec.Queue, f) for f in ("visibility_timeout", "retention", "delay")]
    pairs += [(spec.DatabaseOverlay, spec.Database, "storage")]
    for overlay, base, field in pairs:
        assert shape(overlay, field) == shape(base, field), (overlay.__name__, field)
        assert overlay.model_fields[field].default is None


def test_every_named_map_of_the_spec_is_a_named_kind_with_an_overlay() -> None:
    """spec.NAMED_KINDS drives logical-ID checks, overlay targets and environment merging: a new map of
    named entries in AppSpec must be listed there and have its overlay in Environment."""
    from flowbuilder.compiler import spec

    named = {name for name, info in spec.AppSpec.model_fields.items()
             if name != "environments" and getattr(info.annotation, "__origin__", None) is dict}
    assert named == set(spec.NAMED_KINDS)
    assert named <= set(spec.Environment.model_fields)
