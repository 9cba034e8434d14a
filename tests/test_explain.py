"""fbc explain: a field of the spec (or of a profile) as its generated JSON Schema describes it."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from conftest import run_fbc
from flowbuilder.compiler import schema
from flowbuilder.compiler.explain import explain

APP = schema.app_schema()


def explained(*args: str) -> list[dict[str, Any]]:
    result = run_fbc("explain", *args, "--format", "json")
    assert result.exit_code == 0, result.stderr
    return json.loads(result.stdout)["explanations"]  # type: ignore[no-any-return]


def refused(*args: str) -> str:
    result = run_fbc("explain", *args)
    assert result.exit_code == 2 and result.stdout == ""
    return result.stderr


def test_a_map_key_stands_for_any_entry_and_the_union_gives_both_variants() -> None:
    both = explained("spec.services.worker.scaling")
    assert both == explained("spec.services.*.scaling") == explained("spec.services.api.scaling")
    assert [(e["path"], e["variant"], e["type"]) for e in both] == [
        ("spec.services.*.scaling", "type: web", "WebScaling (object)"),
        ("spec.services.*.scaling", "type: worker", "WorkerScaling (object)")]
    worker = both[1]
    assert worker["description"] == "Task count bounds and autoscaling targets."
    assert worker["about"] == ["WorkerScaling: Task count bounds of a worker; with min 0 it scales to zero on an "
                               "empty queue."]
    assert [(f["name"], f["type"], f["required"]) for f in worker["fields"]] == [
        ("min", "integer", False), ("max", "integer", False), ("targetCpu", "integer", False),
        ("targetMemory", "integer", False)]
    assert worker["fields"][0]["description"] == "Fewest running tasks; 0 scales to zero when the queue is empty."
    assert explained("spec.services.worker.scaling", "--type", "worker") == [worker]


def test_a_field_alike_in_both_variants_is_said_once() -> None:
    (target,) = explained("spec.services.x.scaling.targetCpu")
    assert target["variant"] is None
    assert (target["type"], target["default"], target["constraints"]) == ("integer", 70,
                                                                         [{"minimum": 1, "maximum": 100}])


def test_the_union_itself_lists_both_variants_fields() -> None:
    (union,) = explained("spec.services.web")
    assert union["type"] == "WebService (object) or WorkerService (object), by type"
    assert union["variants"] == ["type: web", "type: worker"]
    fields = {(f["name"], f["type"]): f["variants"] for f in union["fields"]}
    assert fields[("cpu", "integer")] == [] and fields[("type", "string")] == []
    assert fields[("port", "integer")] == ["type: web"] and fields[("queue", "string")] == ["type: worker"]
    assert fields[("scaling", "WebScaling (object)")] == ["type: web"]
    assert fields[("scaling", "WorkerScaling (object)")] == ["type: worker"]
    (worker,) = explained("spec.services.web", "--type", "worker")
    assert (worker["variant"], worker["type"]) == ("type: worker", "WorkerService (object)")
    assert "port" not in {f["name"] for f in worker["fields"]}
    (port,) = explained("spec.services.*.port")  # only web services have a port
    assert (port["variant"], port["required"], port["examples"]) == ("type: web", True, [8000])
    assert port["constraints"] == [{"minimum": 1, "maximum": 65535}]


def test_refs_any_of_with_null_defaults_and_allowed_values() -> None:
    (database,) = explained("spec.environments.prod.database")
    assert (database["type"], database["default"], database["description"]) == (
        "DatabaseOverlay (object) or null", None, "Database overrides.")
    assert [f["name"] for f in database["fields"]] == ["storage"]
    (window,) = explained("spec.schedules.nightly.flexibleWindow")
    assert window["type"] == "integer or string" and window["default"] == 0
    assert window["constraints"] == [{"type": "integer", "minimum": 0, "maximum": 86400},
                                     {"type": "string", "pattern": "^[0-9]+(s|m|h|d)$"}]
    (cpu,) = explained("spec.services.x.cpu")
    assert cpu["constraints"] == [{"enum": [256, 512, 1024, 2048, 4096, 8192, 16384]}]
    (kind,) = explained("kind")
    assert kind["constraints"] == [{"const": "App"}] and kind["required"] is True
    (services,) = explained("spec.services")
    assert services["keys"] == "^[a-z]([a-z0-9-]{0,30}[a-z0-9])?$" and "default" not in services
    (command,) = explained("spec.services.x.command")
    assert (command["type"], command["constraints"]) == ("list of string or null", [{"minItems": 1}])
    assert explained("spec.services.x.command.*")[0]["type"] == "string"
    assert explained("spec.schedules.x.input.anything")[0]["type"] == "any"


def test_text() -> None:
    result = run_fbc("explain", "spec.schedules.nightly.retries")
    assert result.exit_code == 0
    assert result.stdout == (
        "FIELD:       spec.schedules.*.retries\n"
        "TYPE:        Retries (object)\n"
        "REQUIRED:    no\n"
        "DESCRIPTION:\n"
        "  Retry policy of the invocation.\n"
        "  Retries: How EventBridge Scheduler retries a failed invocation.\n"
        "FIELDS:\n"
        "  maxAttempts  integer            Retries after a failed invocation (0 to 185).\n"
        "  maxAge       integer or string  Give up on an event older than this (60s to 24h).\n")
    timezone = run_fbc("explain", "spec.schedules.*.timezone").stdout
    assert 'DEFAULT:     "UTC"\n' in timezone and 'EXAMPLES:    "Europe/Berlin"\n' in timezone
    window = run_fbc("explain", "spec.schedules.*.flexibleWindow").stdout
    assert "ALLOWED:     integer: 0 to 86400; string: pattern ^[0-9]+(s|m|h|d)$\n" in window
    union = run_fbc("explain", "spec.services.x").stdout
    assert "FIELDS (type: web | type: worker):\n" in union
    assert "  port         integer, required       [type: web] Container port that serves HTTP.\n" in union


def test_the_profile_schema() -> None:
    (network,) = explained("profile.spec.network")
    assert (network["path"], network["type"], network["required"]) == ("profile.spec.network",
                                                                       "Network (object)", True)
    assert [(f["name"], f["required"]) for f in network["fields"]] == [("vpc", True), ("nat", True),
                                                                      ("azCount", False)]
    (nat,) = explained("profile.spec.network.nat")
    assert nat["constraints"] == [{"enum": ["gateway-per-az", "single-gateway", "instance", "none"]}]
    assert [f["name"] for f in explained("profile")[0]["fields"]][:2] == ["apiVersion", "kind"]
    assert "profile.spec has no field 'netwrk'; did you mean 'network'?" in refused("profile.spec.netwrk")


def test_unknown_paths_exit_two_with_a_suggestion() -> None:
    assert refused("spec.servics") == "fbc: spec has no field 'servics'; did you mean 'services'?\n"
    assert refused("spec.services.worker.scalling") == (
        "fbc: spec.services.* has no field 'scalling'; did you mean 'scaling'?\n")
    assert refused("spec.services.Worker") == (
        "fbc: spec.services: 'Worker' is not a valid key (keys match ^[a-z]([a-z0-9-]{0,30}[a-z0-9])?$; "
        "'*' stands for any)\n")
    assert refused("spec.region.x") == "fbc: spec.region (string) has no fields\n"
    assert refused("spec..region") == "fbc: 'spec..region': an empty segment (two dots, or a dot at the end)\n"
    assert refused("spec.services.x.port", "--type", "worker") == (
        "fbc: spec.services.* has no field 'port' with --type worker (type: web has it)\n")
    assert refused("spec.services.x", "--type", "wrker") == (
        "fbc: --type 'wrker' is not a type here; did you mean 'worker'?\n")
    assert refused("spec.queues", "--type", "worker") == (
        "fbc: --type 'worker': spec.queues passes no union of types to choose from\n")
    result = run_fbc("explain", "spec.servics", "--format", "json")
    assert result.exit_code == 2
    assert json.loads(result.stdout) == {"error": "spec has no field 'servics'; did you mean 'services'?",
                                         "exit": 2}


def test_it_reads_the_generated_schema(monkeypatch: pytest.MonkeyPatch) -> None:
    """What `fbc schema` writes for the editor is what explain says: a changed schema shows at once."""
    changed = copy.deepcopy(APP)
    changed["definitions"]["Retries"]["properties"]["maxAttempts"]["description"] = "Said by the schema."
    monkeypatch.setattr(schema, "app_schema", lambda: changed)
    assert explained("spec.schedules.x.retries.maxAttempts")[0]["description"] == "Said by the schema."


def _every_path(path: str, depth: int) -> list[str]:
    """Every field below `path`, as explain lists them (a map's fields are its entries', under '*')."""
    found = []
    for e in explain(APP, path):
        entered = e.keys is not None or e.type.startswith(("map of", "list of"))
        at = f"{path}.*" if entered else path
        found += [at] if entered else []
        found += [f"{at}.{f.name}" if at else f.name for f in e.fields]
    unique = sorted(set(found))
    return unique + [deeper for p in unique if depth > 0 for deeper in _every_path(p, depth - 1)]


def test_every_field_of_the_schema_is_explained_with_its_description() -> None:
    paths = _every_path("", 6)
    assert len(paths) > 150 and "spec.environments.*.services.*.scaling.targetCpu" in paths
    for path in paths:
        for e in explain(APP, path):
            assert e.type and (e.description or e.about or path.endswith("*")), path
