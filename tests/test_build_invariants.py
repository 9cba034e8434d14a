"""Invariants over every template of the test matrix (4 specs x 2 profiles x 3 environments): least-privilege
IAM, encryption at rest and tags everywhere, the taggable types against cfn-lint's schemas, logical IDs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from build_helpers import MATRIX, SPECS, compiled, resources, template
from flowbuilder.compiler.emit.tags import TAGGABLE
from flowbuilder.compiler.naming import GLOBAL_IDS, KIND_SUFFIXES, pascal
from flowbuilder.compiler.spec import App


@pytest.mark.parametrize(("spec", "profile", "env"), MATRIX, ids=["-".join(m) for m in MATRIX])
def test_iam_is_least_privilege(spec: str, profile: str, env: str) -> None:
    doc = template(spec, profile, env)
    for name, role in resources(doc, "AWS::IAM::Role").items():
        for policy in role["Properties"].get("Policies", []):
            for st in policy["PolicyDocument"]["Statement"]:
                assert all("*" not in action for action in st["Action"]), (name, st)
                if "*" in st["Resource"]:
                    # Only where AWS offers nothing narrower (see the comments at these statements).
                    assert st["Sid"] in {"EcrLogin", "ManageNetworkInterfaces"}, (name, st["Sid"])
        trust = role["Properties"]["AssumeRolePolicyDocument"]["Statement"][0]
        assert trust["Principal"]["Service"].endswith(".amazonaws.com")


@pytest.mark.parametrize(("spec", "profile", "env"), MATRIX, ids=["-".join(m) for m in MATRIX])
def test_encryption_at_rest_and_tags_everywhere(spec: str, profile: str, env: str) -> None:
    doc = template(spec, profile, env)
    for queue in resources(doc, "AWS::SQS::Queue").values():
        assert queue["Properties"]["SqsManagedSseEnabled"] is True
    for db in resources(doc, "AWS::RDS::DBInstance").values():
        assert db["Properties"]["StorageEncrypted"] is True
    if profile == "standard":
        assert doc["Resources"]["AlertTopic"]["Properties"]["KmsMasterKeyId"] == {"Ref": "AlertKey"}
    expected = {"app": compiled(spec, profile, env).plan.app, "environment": env, "profile": profile,
                "managed-by": "flowbuilder"}
    for name, resource in doc["Resources"].items():
        if resource["Type"] not in TAGGABLE:
            continue
        tags = resource["Properties"]["Tags"]
        found = tags if isinstance(tags, dict) else {t["Key"]: t["Value"] for t in tags}
        assert expected.items() <= found.items(), name


def test_the_taggable_types_are_what_cloudformations_schemas_say() -> None:
    """emit/tags.py's explicit list against the resource schemas of the pinned cfn-lint, for every type the
    test matrix emits: taggable exactly when the schema has a Tags property, in the schema's shape."""
    from cfnlint.schema import PROVIDER_SCHEMA_MANAGER

    emitted = {r["Type"] for m in MATRIX for r in template(*m)["Resources"].values()}
    assert set(TAGGABLE) <= emitted, "listed but never emitted: " + ", ".join(sorted(set(TAGGABLE) - emitted))
    wrong = []
    for kind in sorted(emitted):
        schema = PROVIDER_SCHEMA_MANAGER.get_resource_schema("us-east-1", kind).schema
        prop = schema["properties"].get("Tags")
        if prop is not None and schema.get("tagging", {}).get("taggable") is False:
            prop = None
        shape = None if prop is None else "list" if prop.get("type") == "array" else "map"
        if TAGGABLE.get(kind) != shape:
            wrong.append(f"{kind}: schema says {shape}, tags.py says {TAGGABLE.get(kind)}")
    assert not wrong, "\n".join(wrong)


@pytest.mark.parametrize(("spec", "profile", "env"), MATRIX, ids=["-".join(m) for m in MATRIX])
def test_logical_ids_follow_the_contract(spec: str, profile: str, env: str) -> None:
    doc = template(spec, profile, env)
    app = App.model_validate(_load(SPECS[spec]))
    derived = {pascal(name) + suffix
               for kind, entries in (("services", app.spec.services), ("queues", app.spec.queues),
                                     ("schedules", app.spec.schedules))
               for name in entries for suffix in KIND_SUFFIXES[kind]}
    ids = {*doc["Resources"], *doc.get("Parameters", {}), *doc.get("Outputs", {}), *doc.get("Conditions", {})}
    assert ids - derived - GLOBAL_IDS == set()


def _load(path: Path) -> Any:
    from flowbuilder.compiler.load import load_file

    return load_file(path).data
