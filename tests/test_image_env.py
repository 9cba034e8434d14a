"""The runtime image's Python environment, built with the Dockerfile's own commands (issue 17): the runtime roles
without the compiler's dependencies, under the size target, and every entry point the stacks name importable.

There is no Docker engine here: the test copies what the build stage COPYs into a temporary /src, then runs the
Dockerfile's pip commands as written, with the temporary venv's pip for `pip` and a temporary directory for
/wheels. It drops only --no-cache-dir (pip's cache changes no result, and saves downloading 120 MB each run).
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import tomllib
import venv
from pathlib import Path

import pytest

from conftest import REPO
from flowbuilder.runtime import contract

# The compiler's and `fbc up`'s distributions, and the largest of what they bring: none belongs in the image.
# (click is not here: uvicorn needs it.)
COMPILER_ONLY = {"troposphere", "cfn-lint", "cfn-flip", "moto", "flask", "flask-cors", "werkzeug", "pyyaml",
                 "jsonschema", "jsonpatch", "sympy", "networkx", "aws-sam-translator", "cryptography", "jinja2",
                 "requests", "responses", "xmltodict", "regex", "docker", "checkov", "pytest"}
LIMIT_MB = 140  # the target for the image's Python packages


def _name(requirement: str) -> str:
    return re.split(r"[\[<>=!~;, ]", requirement.strip(), maxsplit=1)[0].lower().replace("_", "-")


def _lines(path: Path) -> list[str]:
    return [line.split("#", 1)[0].strip() for line in path.read_text("utf-8").splitlines()
            if line.split("#", 1)[0].strip()]


def _stages() -> list[list[tuple[str, str]]]:
    """The Dockerfile's stages, each a list of (instruction, arguments), continuation lines joined."""
    text = re.sub(r"\\\n\s*", " ", (REPO / "Dockerfile").read_text("utf-8"))
    stages: list[list[tuple[str, str]]] = []
    for line in text.splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        instruction, _, arguments = line.strip().partition(" ")
        if instruction.upper() == "FROM":
            stages.append([])
        stages[-1].append((instruction.upper(), arguments.strip()))
    return stages


def _pip_commands(arguments: str) -> list[list[str]]:
    return [shlex.split(part) for part in arguments.split("&&") if shlex.split(part)[:1] == ["pip"]]


@pytest.fixture(scope="module")
def image_env(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The image's environment: a venv into which the Dockerfile's pip commands installed the runtime."""
    root = tmp_path_factory.mktemp("image")
    src, wheels, env_dir = root / "src", root / "wheels", root / "venv"
    src.mkdir()
    venv.create(env_dir, with_pip=True)
    python = str(env_dir / "bin" / "python")
    build, final = _stages()[0], _stages()[-1]
    for instruction, arguments in build:  # COPY into WORKDIR /src, as the build stage does
        if instruction == "COPY" and not arguments.startswith("--"):
            *sources, _dest = arguments.split()
            for source in sources:
                target = src / (source if _dest in ("./", ".") else _dest)
                if (REPO / source).is_dir():
                    shutil.copytree(REPO / source, target, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
                else:
                    shutil.copy2(REPO / source, target)
    for stage, cwd in ((build, src), (final, root)):
        for instruction, arguments in stage:
            if instruction != "RUN":
                continue
            for command in _pip_commands(arguments.replace("/wheels", str(wheels))):
                args = [python, "-m", "pip", "--quiet"]
                for arg in command[1:]:  # the shell's part: /wheels/*.whl
                    if arg != "--no-cache-dir":
                        args += sorted(map(str, Path(arg).parent.glob(Path(arg).name))) if "*" in arg else [arg]
                done = subprocess.run(args, cwd=cwd, capture_output=True, text=True, timeout=900)
                assert done.returncode == 0, f"{' '.join(command)}:\n{done.stdout}\n{done.stderr}"
    return env_dir


def _site_packages(env_dir: Path) -> Path:
    return next((env_dir / "lib").glob("python3*/site-packages"))


def _installed(env_dir: Path) -> dict[str, str]:
    names = {}
    for dist in _site_packages(env_dir).glob("*.dist-info"):
        name, version = dist.name.removesuffix(".dist-info").rsplit("-", 1)
        names[name.lower().replace("_", "-")] = version
    return names


def test_requirements_repeat_pyprojects_runtime_lines() -> None:
    """requirements-runtime.txt's lines are pyproject.toml's, verbatim, plus the Lambda runtime interface client."""
    declared = tomllib.loads((REPO / "pyproject.toml").read_text("utf-8"))["project"]["dependencies"]
    runtime = _lines(REPO / "requirements-runtime.txt")
    assert [r for r in runtime if _name(r) != "awslambdaric"] == [r for r in declared if r in runtime]
    assert not {_name(r) for r in runtime} & COMPILER_ONLY
    pinned = {_name(line.split("==")[0]) for line in _lines(REPO / "constraints.txt")}
    assert {_name(r) for r in runtime} <= pinned, "constraints.txt pins every package of the image"


def test_the_image_has_no_compiler_dependency_and_fits(image_env: Path) -> None:
    installed = _installed(image_env)
    assert not COMPILER_ONLY & installed.keys(), sorted(COMPILER_ONLY & installed.keys())
    assert {_name(r) for r in _lines(REPO / "requirements-runtime.txt")} <= installed.keys()
    assert "flowbuilder" in installed
    # Every distribution's requirements are met, except flowbuilder's compiler ones (installed with --no-deps).
    check = subprocess.run([str(image_env / "bin" / "python"), "-m", "pip", "check"], capture_output=True,
                           text=True)
    unmet = [line for line in check.stdout.splitlines() if line.strip()]
    assert all(line.startswith("flowbuilder ") for line in unmet), unmet
    missing = {_name(line.split(" requires ", 1)[1]) for line in unmet}
    assert missing <= COMPILER_ONLY, missing
    size = sum(f.stat().st_size for f in _site_packages(image_env).rglob("*") if f.is_file())
    assert size <= LIMIT_MB * 1024 * 1024, f"{size / 2**20:.0f} MB of Python packages"


def test_every_entry_point_imports_in_the_image(image_env: Path, tmp_path: Path) -> None:
    """What the templates run (runtime/contract.py: ECS commands, the Lambda entry point and handlers), imported
    by the image's interpreter away from the source tree, with no FLOWBUILDER_* set: nothing at import may need
    the compiler's packages, the database or AWS."""
    modules = [f"{command[2]}.__main__" for command in contract.COMMANDS.values()]
    modules.append(f"{contract.LAMBDA_ENTRYPOINT[2]}.__main__")
    handlers = list(contract.LAMBDA_HANDLERS.values())
    script = "\n".join([
        "import importlib",
        f"for name in {modules!r}:",
        "    importlib.import_module(name)",
        f"for path in {handlers!r}:",
        "    module, _, attribute = path.rpartition('.')",
        "    assert callable(getattr(importlib.import_module(module), attribute)), path",
        "print('ok')",
    ])
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FLOWBUILDER_", "PYTHON", "AWS_"))}
    done = subprocess.run([str(image_env / "bin" / "python"), "-I", "-c", script], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr
