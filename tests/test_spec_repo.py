"""The repository's own flowbuilder.yaml and the `fbc init` starter stay valid everywhere they are used."""

from __future__ import annotations

from pathlib import Path

import pytest

from conftest import REPO, run_fbc
from flowbuilder.compiler.profiles import BUILTIN
from flowbuilder.compiler.spec import WebService, WorkerService
from flowbuilder.compiler.validate import validate_file


@pytest.mark.parametrize("profile", [None, *BUILTIN])
@pytest.mark.parametrize("env", [None, "dev", "staging", "prod"])
def test_repository_spec_is_valid(profile: str | None, env: str | None) -> None:
    args = ["validate", "-f", str(REPO / "flowbuilder.yaml")]
    args += ["--profile", profile] if profile else []
    args += ["--env", env] if env else []
    result = run_fbc(*args)
    assert result.exit_code == 0, result.output
    assert result.stdout == ""


def test_repository_spec_describes_the_architecture() -> None:
    app = validate_file(REPO / "flowbuilder.yaml").app
    assert app is not None
    spec = app.spec
    assert {name: type(s) for name, s in spec.services.items()} == {
        "frontend": WebService, "api": WebService, "worker": WorkerService}
    worker = spec.services["worker"]
    assert isinstance(worker, WorkerService) and worker.queue == "workflow-requests"
    assert spec.queues["workflow-requests"].dead_letter.max_receive_count == 5
    assert spec.database.engine == "postgres"
    assert spec.schedules["nightly-report"].timezone == "Europe/Berlin"


def test_environment_overlay_is_applied() -> None:
    prod = validate_file(REPO / "flowbuilder.yaml", environment="prod").app
    base = validate_file(REPO / "flowbuilder.yaml").app
    assert prod is not None and base is not None
    assert prod.spec.services["api"].scaling.min == 2
    assert prod.spec.services["api"].scaling.max == 4  # maps merge: untouched keys survive
    assert base.spec.services["api"].scaling.min == 1
    dev = validate_file(REPO / "flowbuilder.yaml", environment="dev").app
    assert dev is not None and dev.spec.schedules["nightly-report"].enabled is False


def test_init_writes_a_valid_starter_with_schema(tmp_path: Path) -> None:
    target = tmp_path / "My_Project"
    result = run_fbc("init", str(target))
    assert result.exit_code == 0, result.output
    text = (target / "flowbuilder.yaml").read_text("utf-8")
    assert text.startswith("# yaml-language-server: $schema=./flowbuilder.schema.json\n")
    assert "name: my-project" in text
    assert (target / "flowbuilder.schema.json").read_text("utf-8") == (
        REPO / "schema" / "flowbuilder.schema.json").read_text("utf-8")
    check = run_fbc("validate", "-f", str(target / "flowbuilder.yaml"), "--profile", "ultra")
    assert check.exit_code == 0, check.output


def test_init_refuses_to_overwrite(tmp_path: Path) -> None:
    (tmp_path / "flowbuilder.yaml").write_text("keep me", "utf-8")
    result = run_fbc("init", str(tmp_path))
    assert result.exit_code == 2
    assert "exists; pass --force" in result.stderr
    assert (tmp_path / "flowbuilder.yaml").read_text("utf-8") == "keep me"
