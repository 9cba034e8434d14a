"""Feature goldens: a spec fragment (tests/golden/features/<feature>.yaml, merged over tests/specs/minimal.yaml)
and, per profile, the resources, parameters and outputs it adds, changes or removes in the dev template
(<feature>-<profile>.json). An emitter change then shows one small readable diff per feature it touches,
besides the whole-application goldens. Rewrite them after a reviewed change: python tests/golden/regenerate.py
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

import yaml

from flowbuilder.compiler.build import compile_spec
from flowbuilder.compiler.merge import deep_merge

REPO = Path(__file__).resolve().parents[1]
BASE = REPO / "tests" / "specs" / "minimal.yaml"
FEATURES = REPO / "tests" / "golden" / "features"
PROFILES = ("standard", "ultra")


def _template(document: dict[str, Any], profile: str) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as folder:
        spec = Path(folder) / "flowbuilder.yaml"
        spec.write_text(yaml.safe_dump(document, sort_keys=False), "utf-8")
        return json.loads(compile_spec(spec, profile, "dev").built.body)  # type: ignore[no-any-return]


def _delta(before: dict[str, Any], after: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for section in ("Parameters", "Conditions", "Resources", "Outputs"):
        old, new = before.get(section, {}), after.get(section, {})
        added = {k: new[k] for k in sorted(set(new) - set(old))}
        changed = {k: {"before": old[k], "after": new[k]} for k in sorted(set(old) & set(new)) if old[k] != new[k]}
        removed = sorted(set(old) - set(new))
        part = {name: value for name, value in (("added", added), ("changed", changed), ("removed", removed))
                if value}
        if part:
            out[section] = part
    return out


def render(feature: Path, profile: str) -> str:
    base = yaml.safe_load(BASE.read_text("utf-8"))
    fragment = yaml.safe_load(feature.read_text("utf-8"))
    merged = {**base, "spec": deep_merge(base["spec"], fragment)}
    return json.dumps(_delta(_template(base, profile), _template(merged, profile)), indent=1, sort_keys=True) + "\n"


def cases() -> list[tuple[Path, str, Path]]:
    """(fragment, profile, golden file) for every feature and profile."""
    return [(f, p, f.with_name(f"{f.stem}-{p}.json")) for f in sorted(FEATURES.glob("*.yaml")) for p in PROFILES]
