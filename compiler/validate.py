"""load -> validate: the spec models, then the semantic checks, for the base spec and each environment.

Every problem is collected, located once through the loader's mark index, and returned sorted by position.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path as FsPath
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from . import load
from .checks import CheckContext, run_checks
from .diagnostics import Diagnostic, Path, finalize
from .merge import deep_merge
from .model_errors import diagnostics_from
from .spec import NAMED_KINDS, App

if TYPE_CHECKING:  # profiles load only when a profile is chosen
    from .profiles import ResolvedProfile

DEFAULT_ENVIRONMENTS = ("dev", "staging", "prod")


@dataclass(frozen=True)
class Result:
    # The spec as it applies to the chosen environment (base spec when none); None when invalid.
    app: App | None
    diagnostics: list[Diagnostic]

    @property
    def valid(self) -> bool:
        return not any(d.severity == "error" for d in self.diagnostics)


def _model(data: dict[str, Any]) -> tuple[App | None, list[Diagnostic]]:
    try:
        return App.model_validate(data), []
    except ValidationError as exc:
        return None, list(diagnostics_from(exc, App, data))


def environment_data(data: dict[str, Any], environment: str) -> dict[str, Any]:
    """The document with one environment's overlay merged into spec (and no environments left).

    Overrides of entries the base does not define are left out: checks.references reports them.
    """
    spec = {k: v for k, v in data["spec"].items() if k != "environments"}
    overlay = dict(data["spec"].get("environments", {}).get(environment) or {})
    for kind in NAMED_KINDS:
        if isinstance(overlay.get(kind), dict):
            overlay[kind] = {k: v for k, v in overlay[kind].items() if k in (spec.get(kind) or {})}
    return {**data, "spec": deep_merge(spec, overlay)}


def _in_overlay(diagnostic: Diagnostic, data: dict[str, Any], environment: str) -> Diagnostic:
    """Point a problem found in the merged spec at the overlay line that caused it, if one did."""
    prefix: Path = ("spec", "environments", environment)
    node: Any = data
    for part in prefix + diagnostic.path[1:]:
        if not isinstance(node, dict) or part not in node:
            return diagnostic
        node = node[part]
    return replace(diagnostic, path=prefix + diagnostic.path[1:])


def _check(app: App, data: dict[str, Any], profile: ResolvedProfile | None,
           environments: tuple[str, ...]) -> list[Diagnostic]:
    return list(run_checks(CheckContext(app=app, data=data, profile=profile, environments=environments)))


def validate_document(doc: load.Document, *, environment: str | None = None,
                      profile: ResolvedProfile | None = None) -> Result:
    app, problems = _model(doc.data)
    located = finalize([*doc.diagnostics, *problems], doc.index)
    if app is None or doc.diagnostics:
        return Result(None, located)

    declared = tuple(app.spec.environments)
    names = set(declared) | set(profile.environments if profile else DEFAULT_ENVIRONMENTS)
    if environment:
        names.add(environment)
    environments = tuple(sorted(names))
    located += _check(app, doc.data, profile, environments)

    chosen = app
    for name in (environment,) if environment else declared:
        merged = environment_data(doc.data, name)
        env_app, env_problems = _model(merged)
        if env_app is not None:
            env_problems += _check(env_app, merged, profile, environments)
            if name == environment:
                chosen = env_app
        located += [_in_overlay(d, doc.data, name) for d in env_problems]
    diagnostics = finalize(located, doc.index)
    return Result(chosen if not any(d.severity == "error" for d in diagnostics) else None, diagnostics)


def validate_file(path: str | FsPath, *, environment: str | None = None,
                  profile: ResolvedProfile | None = None) -> Result:
    """Raises load's Invalid for unreadable input, OSError for I/O."""
    return validate_document(load.load_file(path), environment=environment, profile=profile)
