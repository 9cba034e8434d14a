"""`pip install .` in a clean venv gives a working fbc, with the schema and profiles inside the wheel."""

from __future__ import annotations

import shutil
import subprocess
import sys
import venv
import zipfile
from pathlib import Path

import pytest

from conftest import REPO


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    # Build from the files git tracks only, so a file missing from a commit fails here, not for users.
    source = tmp_path_factory.mktemp("source")
    tracked = subprocess.run(["git", "ls-files", "-z"], cwd=REPO, capture_output=True, check=True).stdout
    for name in filter(None, tracked.decode().split("\0")):
        (source / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO / name, source / name, follow_symlinks=False)  # .typecheck/ links stay links
    out = tmp_path_factory.mktemp("dist")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(out), str(source)],
                   check=True, timeout=600)
    return next(out.glob("flowbuilder-*.whl"))


def test_wheel_contains_packages_schema_and_profiles(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    assert {"flowbuilder/schema/flowbuilder.schema.json", "flowbuilder/profiles/standard.yaml",
            "flowbuilder/profiles/ultra.yaml", "flowbuilder/compiler/cli/__init__.py",
            "flowbuilder/runtime/__init__.py"} <= names
    assert not any(n.startswith(("tests/", "compiler/", "schema/")) for n in names)
    packaged = zipfile.ZipFile(wheel).read("flowbuilder/schema/flowbuilder.schema.json").decode("utf-8")
    assert packaged == (REPO / "schema" / "flowbuilder.schema.json").read_text("utf-8")


def test_fresh_venv_gets_a_working_fbc(wheel: Path, tmp_path: Path) -> None:
    env_dir = tmp_path / "venv"
    venv.create(env_dir, with_pip=True)
    pip = env_dir / "bin" / "pip"
    subprocess.run([str(pip), "install", "-q", str(wheel)], check=True, timeout=900)
    fbc = env_dir / "bin" / "fbc"
    work = tmp_path / "work"  # away from the source tree, so nothing imports from it
    work.mkdir()
    shutil.copy(REPO / "flowbuilder.yaml", work / "flowbuilder.yaml")
    assert subprocess.run([str(fbc), "--version"], capture_output=True, text=True, cwd=work).stdout.startswith(
        "fbc, version")
    for profile in ("standard", "ultra"):
        proc = subprocess.run([str(fbc), "validate", "--profile", profile, "--env", "prod"], capture_output=True,
                              text=True, cwd=work)
        assert proc.returncode == 0, proc.stderr
    schema = subprocess.run([str(fbc), "schema"], capture_output=True, text=True, cwd=work, check=True).stdout
    assert schema == (REPO / "schema" / "flowbuilder.schema.json").read_text("utf-8")
    init = subprocess.run([str(fbc), "init", "demo"], capture_output=True, text=True, cwd=work)
    assert init.returncode == 0, init.stderr
