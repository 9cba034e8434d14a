"""Profiles: data that says how a spec becomes AWS resources (profiles/standard.yaml, profiles/ultra.yaml).

A profile may `extends` another (by built-in name or path); its `environments` block overlays the base for
dev, staging, prod or any other environment. Merging follows compiler/merge.py.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from pathlib import Path as FsPath
from typing import Any, Literal

from pydantic import Field, ValidationError

from . import load
from .decisions import refusals
from .diagnostics import Invalid, MarkIndex, finalize
from .merge import deep_merge, rebase_index
from .model_errors import diagnostics_from
from .scalars import Name
from .spec import ApiVersion, Model


def _builtin() -> tuple[str, ...]:
    """The built-in profiles: every YAML file of the flowbuilder.profiles package, discovered, so a profile
    that recombines existing settings is one file there (docs/extending.md)."""
    files = resources.files("flowbuilder.profiles").iterdir()
    return tuple(sorted(f.name.removesuffix(".yaml") for f in files if f.name.endswith(".yaml")))


BUILTIN = _builtin()


class Network(Model):
    """Where tasks run."""

    vpc: Literal["new", "existing"] = Field(description="new: a VPC with public, private and database "
                                                        "subnets; existing: VpcId and subnets as parameters.")
    nat: Literal["gateway-per-az", "single-gateway", "instance", "none"] = Field(
        description="How private subnets reach the internet; none puts tasks in public subnets.")
    az_count: int = Field(2, ge=1, le=3, description="Availability zones to span (new VPC).")


class DatabasePolicy(Model):
    """How the database is provided."""

    mode: Literal["rds", "external"] = Field(description="rds: PostgreSQL on RDS; external: a connection "
                                                         "string from SSM or Secrets Manager.")
    instance_class: str = Field("db.t4g.micro", description="RDS instance class.")
    multi_az: bool = Field(False, description="RDS standby in a second AZ.")
    performance_insights: bool = Field(False, description="RDS Performance Insights.")
    deletion_protection: bool = Field(False, description="RDS deletion protection.")
    backup_retention_days: int = Field(7, ge=0, le=35, description="RDS automated backup retention.")


class WebPolicy(Model):
    """How web services are served."""

    serving: Literal["load-balancer", "function-url"] = Field(
        description="load-balancer: ECS services behind an ALB; function-url: Lambda behind function URLs.")


class WorkerPolicy(Model):
    """How queue messages reach workers."""

    dispatch: Literal["autoscaled-service", "pipe"] = Field(
        description="autoscaled-service: an ECS service scaled on queue depth; pipe: an EventBridge Pipe "
                    "runs one task per message.")
    capacity: Literal["FARGATE", "FARGATE_SPOT"] = Field("FARGATE", description="Fargate capacity provider.")


class MonitoringPolicy(Model):
    """What is watched."""

    dashboard: bool = Field(True, description="A CloudWatch dashboard.")
    alarms: Literal["full", "dead-letter"] = Field("full", description="full: every alarm; dead-letter: only "
                                                                       "dead-letter depth (free tier).")
    log_retention_days: int = Field(30, ge=1, le=3653, description="CloudWatch Logs retention.")


class ProfileSpec(Model):
    network: Network = Field(description="Network layout.")
    database: DatabasePolicy = Field(description="Database provisioning.")
    web: WebPolicy = Field(description="HTTP serving.")
    workers: WorkerPolicy = Field(description="Worker dispatch.")
    monitoring: MonitoringPolicy = Field(default_factory=MonitoringPolicy, description="Monitoring.")


class ProfileMetadata(Model):
    name: Name = Field(description="Profile name.")
    description: str = Field("", description="What the profile trades off.")


class Profile(Model):
    """A resolved profile: base spec with one environment's overlay applied."""

    api_version: ApiVersion = Field(description="Version of this format.")
    kind: Literal["Profile"] = Field(description="Always Profile.")
    metadata: ProfileMetadata = Field(description="Name and description.")
    extends: str | None = Field(None, description="A built-in profile name or a path to extend.")
    spec: ProfileSpec = Field(description="How the application becomes AWS resources.")
    environments: dict[Name, dict[str, Any]] = Field(
        default_factory=dict, description="Per-environment overlays of spec, deep-merged.")


@dataclass(frozen=True)
class ResolvedProfile:
    name: str
    environment: str | None
    spec: ProfileSpec
    environments: tuple[str, ...]


def _read(ref: str, seen: tuple[str, ...]) -> tuple[dict[str, Any], MarkIndex]:
    """Raw profile data for a built-in name or a path, with its `extends` chain merged underneath."""
    if ref in seen:
        raise ValueError(f"profile {ref!r} extends itself ({' -> '.join((*seen, ref))})")
    if ref in _builtin():
        text = resources.files("flowbuilder.profiles").joinpath(f"{ref}.yaml").read_text("utf-8")
        doc = load.load_text(text, f"profiles/{ref}.yaml")
    elif FsPath(ref).is_file():
        doc = load.load_file(ref)
    else:
        raise ValueError(f"unknown profile {ref!r}: use one of {', '.join(_builtin())} or a path to a file")
    if doc.diagnostics:
        raise Invalid(finalize(doc.diagnostics, doc.index))
    data = doc.data
    parent = data.get("extends")
    if isinstance(parent, str):
        base, _ = _read(parent, (*seen, ref))
        data = deep_merge(base, data)
    return data, doc.index


def _validated(data: dict[str, Any], index: MarkIndex) -> Profile:
    try:
        profile = Profile.model_validate(data)
    except ValidationError as exc:
        raise Invalid(finalize(diagnostics_from(exc, Profile, data), index)) from None
    if problems := refusals(profile.spec):  # what AWS cannot run, at the setting to change
        raise Invalid(finalize(problems, index))
    return profile


def resolve(ref: str, environment: str | None = None) -> ResolvedProfile:
    """Load a profile by name or path, check it and every environment overlay, and apply `environment`."""
    data, index = _read(ref, ())
    profile = _validated(data, index)
    chosen = profile.spec
    for name, overlay in profile.environments.items():
        merged = {**data, "spec": deep_merge(data["spec"], overlay)}
        spec = _validated(merged, rebase_index(index, ("environments", name), ("spec",))).spec
        if name == environment:
            chosen = spec
    return ResolvedProfile(profile.metadata.name, environment, chosen, tuple(sorted(profile.environments)))


DEFAULT = "standard"  # the profile of a spec that names none


@dataclass(frozen=True)
class Choice:
    """Which profile a verb uses, and why: the one place that decides (every verb asks `choose`)."""

    ref: str  # a built-in name or a path
    source: str  # "--profile", "spec.environments.<env>.profile", "spec.profile" or "default"
    note: str = ""  # one line for stderr when --profile overrides what the spec says


def choose(data: Any, environment: str | None, override: str | None, spec_dir: FsPath | None = None) -> Choice:
    """The profile for `environment`: --profile, else the spec's environment's `profile`, else `spec.profile`,
    else standard. `data` is the spec as loaded (it may be invalid: validation says so later); a path in the
    spec is relative to the spec's directory."""
    spec = data.get("spec") if isinstance(data, dict) else None
    spec = spec if isinstance(spec, dict) else {}
    environments = spec.get("environments")
    overlay = environments.get(environment) if isinstance(environments, dict) and environment else None
    named = [(overlay.get("profile") if isinstance(overlay, dict) else None,
              f"spec.environments.{environment}.profile"), (spec.get("profile"), "spec.profile")]
    said = next(((value, where) for value, where in named if isinstance(value, str) and value), None)
    if override:
        if said is None or said[0] == override:
            return Choice(override, "--profile")
        return Choice(override, "--profile", f"--profile {override} overrides {said[1]} ({said[0]})")
    if said is None:
        return Choice(DEFAULT, "default")
    value, where = said
    if value in _builtin():
        return Choice(value, where)
    path = FsPath(value) if spec_dir is None or FsPath(value).is_absolute() else spec_dir / value
    if not path.is_file():
        raise ValueError(f"{where}: unknown profile {value!r}: use one of {', '.join(_builtin())} or a path to a "
                         f"file (relative to the spec)")
    return Choice(str(path), where)


def choose_profile(spec_file: str | FsPath, environment: str | None, override: str | None) -> Choice:
    """`choose` for a spec file (read here; its own errors are validation's to report)."""
    return choose(load.load_file(spec_file).data, environment, override, FsPath(spec_file).parent)
