"""The pre-commit hooks (.pre-commit-hooks.yaml) as users get them: `pre-commit try-repo` installs this repository
into a venv of pre-commit's own (pip, with constraints.txt's pins: a few minutes the first time, then cached in
the module's PRE_COMMIT_HOME) and runs a hook on a temporary git repository."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import REPO
from flowbuilder.compiler import precommit

WORKFLOW = """\
name: flowbuilder
on:
  pull_request:
jobs:
  plan:
    runs-on: ubuntu-latest
    steps:
      - uses: flowbuilder/flowbuilder@v1
        with:
          environment: prod
"""

GIT = ["git", "-c", "user.name=fbc tests", "-c", "user.email=tests@flowbuilder.invalid", "-c", "commit.gpgsign=false"]


def git(cwd: Path, *args: str) -> None:
    subprocess.run([*GIT, *args], cwd=cwd, check=True, capture_output=True)


@pytest.fixture(scope="module")
def hook_repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """This repository's tracked files as they are in the working tree, committed in a repository of their own
    (try-repo installs a commit; others' work in progress in a shared checkout stays out)."""
    source = tmp_path_factory.mktemp("hooks")
    tracked = subprocess.run(["git", "ls-files", "-z"], cwd=REPO, capture_output=True, check=True).stdout
    for name in filter(None, tracked.decode().split("\0")):
        if (REPO / name).is_file() or (REPO / name).is_symlink():
            (source / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / name, source / name, follow_symlinks=False)
    git(source, "init", "-q")
    git(source, "add", "-A")
    git(source, "commit", "-q", "-m", "hooks")
    return source


@pytest.fixture(scope="module")
def pre_commit_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("pre-commit-home")


def project(root: Path, files: dict[str, str]) -> Path:
    root.mkdir()
    git(root, "init", "-q")
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text, "utf-8")
    git(root, "add", "-A")  # --all-files runs on what git tracks
    return root


def try_repo(hook_repo: Path, home: Path, where: Path, hook: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PRE_COMMIT_HOME": str(home), "PIP_CONSTRAINT": str(REPO / "constraints.txt"),
           "PRE_COMMIT_COLOR": "never", "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
    return subprocess.run([sys.executable, "-m", "pre_commit", "try-repo", str(hook_repo), hook, "--all-files"],
                          cwd=where, env=env, capture_output=True, text=True, timeout=1800)


def test_fbc_validate_hook(hook_repo: Path, pre_commit_home: Path, tmp_path: Path) -> None:
    spec = (REPO / "flowbuilder.yaml").read_text("utf-8")
    broken = spec.replace("visibilityTimeout: 15m", "visibilityTimeout: 15parsecs")
    assert broken != spec
    line = next(n for n, text in enumerate(broken.splitlines(), 1) if "15parsecs" in text)
    column = broken.splitlines()[line - 1].index("15parsecs") + 1
    # .github/workflows/flowbuilder.yml is the workflow docs/github-actions.md has users create: not a spec.
    both = project(tmp_path / "both", {"flowbuilder.yaml": spec, "apps/flowbuilder.staging.yaml": broken,
                                       "other.yaml": "not: [a spec\n", ".github/workflows/flowbuilder.yml": WORKFLOW})
    failed = try_repo(hook_repo, pre_commit_home, both, "fbc-validate")
    assert failed.returncode == 1, failed.stdout + failed.stderr
    assert (f"apps/flowbuilder.staging.yaml:{line}:{column}: spec.queues.workflow-requests.visibilityTimeout: "
            "'15parsecs' is not a duration") in failed.stdout, failed.stdout
    assert "flowbuilder.yaml: valid" in failed.stdout and "other.yaml" not in failed.stdout
    assert ".github" not in failed.stdout  # excluded by the hook: not even passed to it

    valid = project(tmp_path / "valid", {"flowbuilder.yaml": spec})
    passed = try_repo(hook_repo, pre_commit_home, valid, "fbc-validate")
    assert passed.returncode == 0, passed.stdout + passed.stderr
    assert "fbc validate" in passed.stdout and "Passed" in passed.stdout


def test_fbc_schema_current_hook(hook_repo: Path, pre_commit_home: Path, tmp_path: Path) -> None:
    schema = (REPO / "schema" / "flowbuilder.schema.json").read_text("utf-8")
    current = project(tmp_path / "current", {"flowbuilder.schema.json": schema})
    passed = try_repo(hook_repo, pre_commit_home, current, "fbc-schema-current")
    assert passed.returncode == 0, passed.stdout + passed.stderr

    stale = project(tmp_path / "stale", {"config/flowbuilder.schema.json": schema.replace('"title"', '"Title"', 1)})
    failed = try_repo(hook_repo, pre_commit_home, stale, "fbc-schema-current")
    assert failed.returncode == 1
    assert ("config/flowbuilder.schema.json: differs from `fbc schema`; run: fbc schema -o "
            "config/flowbuilder.schema.json") in failed.stdout, failed.stdout


def test_validate_skips_another_tools_yaml_with_a_note(tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    """A workflow or a manifest named flowbuilder*.yml outside .github/ is noted and skipped; a spec, one with a
    mistyped apiVersion and a document that does not parse are still validated (and fail)."""
    spec = (REPO / "flowbuilder.yaml").read_text("utf-8")
    files = {"ci/flowbuilder.yml": WORKFLOW, "k8s/flowbuilder.yaml": "apiVersion: apps/v1\nkind: Deployment\n",
             "flowbuilder.yaml": spec}
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text, "utf-8")
    names = [str(tmp_path / name) for name in files]
    assert precommit.main(["validate", *names]) == 0
    out = capfd.readouterr().err  # the notes and fbc validate's summary line, on stderr
    assert f"{names[0]}: skipped, not a Flow Builder spec (a GitHub Actions workflow: no apiVersion, kind App " \
           "nor spec)" in out
    assert f"{names[1]}: skipped, not a Flow Builder spec (apiVersion apps/v1, kind Deployment)" in out
    assert f"{names[2]}: valid" in out

    mistyped = tmp_path / "flowbuilder.typo.yaml"
    mistyped.write_text(spec.replace("apiVersion: flowbuilder.dev/v1alpha1", "apiVersion: flowbuilder.dev/v2"),
                        "utf-8")
    unparsed = tmp_path / "flowbuilder.broken.yaml"
    unparsed.write_text("jobs: [unclosed\n", "utf-8")
    assert precommit.main(["validate", str(mistyped), str(unparsed)]) != 0
    captured = capfd.readouterr()
    out = captured.out + captured.err  # fbc validate: problems on stdout, its summary on stderr
    assert "skipped, not" not in out and f"{mistyped}: 1 error(s)" in out
    assert f"{unparsed}:2:1: YAML syntax error" in out
