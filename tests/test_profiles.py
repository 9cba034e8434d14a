"""Profiles: built-ins load from the package, environments overlay, user profiles extend by name or path."""

from __future__ import annotations

from pathlib import Path

import pytest

from flowbuilder.compiler.diagnostics import Invalid, format_text
from flowbuilder.compiler.profiles import BUILTIN, resolve


def test_builtin_profiles_resolve_in_every_environment() -> None:
    for name in BUILTIN:
        for env in (None, "dev", "staging", "prod"):
            assert resolve(name, env).name == name


def test_standard_prod_is_highly_available() -> None:
    prod, dev = resolve("standard", "prod").spec, resolve("standard", "dev").spec
    assert prod.database.multi_az and prod.database.performance_insights and prod.database.deletion_protection
    assert prod.network.nat == "gateway-per-az"
    assert dev.network.nat == "instance"
    assert not dev.database.multi_az


def test_ultra_has_no_idle_infrastructure() -> None:
    ultra = resolve("ultra", "prod").spec
    assert (ultra.network.vpc, ultra.network.nat, ultra.database.mode) == ("existing", "none", "external")
    assert (ultra.web.serving, ultra.workers.dispatch, ultra.workers.capacity) == (
        "function-url", "pipe", "FARGATE_SPOT")
    assert ultra.monitoring.dashboard is False


def test_user_profile_extends_a_builtin(tmp_path: Path) -> None:
    path = tmp_path / "mine.yaml"
    path.write_text(
        "apiVersion: flowbuilder.dev/v1alpha1\nkind: Profile\nmetadata: {name: mine}\nextends: standard\n"
        "spec:\n  database: {instanceClass: db.r7g.large}\n", "utf-8")
    prod = resolve(str(path), "prod").spec
    assert prod.database.instance_class == "db.m7g.large"  # the base's prod overlay still applies on top
    assert resolve(str(path)).spec.database.instance_class == "db.r7g.large"
    assert resolve(str(path)).spec.web.serving == "load-balancer"


def test_invalid_profile_is_located(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(
        "apiVersion: flowbuilder.dev/v1alpha1\nkind: Profile\nmetadata: {name: bad}\nextends: ultra\n"
        "environments:\n  prod:\n    workers: {dispatch: lambda}\n", "utf-8")
    with pytest.raises(Invalid) as info:
        resolve(str(path))
    assert format_text(info.value.diagnostics) == (
        f"{path}:7:25: spec.workers.dispatch: 'lambda' is not one of 'autoscaled-service' or 'pipe'")


def test_profile_cycle_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "loop.yaml"
    path.write_text(f"apiVersion: flowbuilder.dev/v1alpha1\nkind: Profile\nmetadata: {{name: loop}}\n"
                    f"extends: {path}\n", "utf-8")
    with pytest.raises(ValueError, match="extends itself"):
        resolve(str(path))


def test_a_profile_file_in_the_package_is_a_builtin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Built-ins are discovered: a profile that recombines settings is one YAML file in profiles/."""
    from importlib import resources

    from flowbuilder.compiler import profiles

    package = resources.files("flowbuilder.profiles")
    for name in BUILTIN:
        (tmp_path / f"{name}.yaml").write_text(package.joinpath(f"{name}.yaml").read_text("utf-8"), "utf-8")
    (tmp_path / "lean.yaml").write_text(
        "apiVersion: flowbuilder.dev/v1alpha1\nkind: Profile\nmetadata: {name: lean}\nextends: standard\n"
        "spec:\n  workers: {dispatch: pipe, capacity: FARGATE_SPOT}\n", "utf-8")
    real = resources.files
    monkeypatch.setattr(profiles.resources, "files",
                        lambda anchor: tmp_path if anchor == "flowbuilder.profiles" else real(anchor))
    assert profiles._builtin() == ("lean", *BUILTIN)
    lean = resolve("lean", "prod").spec
    assert (lean.workers.dispatch, lean.network.nat, lean.database.multi_az) == ("pipe", "gateway-per-az", True)
