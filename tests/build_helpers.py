"""Compiled templates shared by the build tests (compiled once per session)."""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

from conftest import REPO
from flowbuilder.compiler.build import Compiled, compile_spec

SPECS = {
    "flow-builder": REPO / "flowbuilder.yaml",
    "minimal": REPO / "tests" / "specs" / "minimal.yaml",
    "full": REPO / "tests" / "specs" / "full.yaml",
    "private-api": REPO / "tests" / "specs" / "private-api.yaml",
}
PROFILES = ("standard", "ultra")
ENVIRONMENTS = ("dev", "staging", "prod")
MATRIX = [(spec, profile, env) for spec in SPECS for profile in PROFILES for env in ENVIRONMENTS]


@functools.cache
def compiled(spec: str, profile: str, env: str) -> Compiled:
    return compile_spec(SPECS[spec], profile, env)


def template(spec: str, profile: str, env: str) -> dict[str, Any]:
    return json.loads(compiled(spec, profile, env).built.body)  # type: ignore[no-any-return]


def resources(doc: dict[str, Any], kind: str) -> dict[str, dict[str, Any]]:
    return {k: v for k, v in doc["Resources"].items() if v["Type"] == kind}


def spec_path(name: str) -> Path:
    return SPECS[name]
