"""The pre-commit hooks of .pre-commit-hooks.yaml. pre-commit passes the changed files as arguments, and
`fbc validate` takes one spec (-f), so `validate` runs it once per file, skipping (with a note) a YAML document
that is another tool's (a GitHub workflow named flowbuilder.yml, a Kubernetes manifest); `schema-current`
compares a committed schema with what this fbc's `fbc schema` prints.

    python -m flowbuilder.compiler.precommit validate FILE...
    python -m flowbuilder.compiler.precommit schema-current FILE...
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path


def validate(files: list[str]) -> int:
    """`fbc validate -f FILE` for each spec (its own output: file:line:column lines); the worst exit code. A
    file that is not a Flow Builder spec is skipped with a note."""
    fbc = Path(sys.executable).with_name("fbc")
    command = str(fbc) if fbc.exists() else shutil.which("fbc") or "fbc"
    worst = 0
    for name in files:
        other = not_a_spec(name)
        if other:
            print(f"{name}: skipped, not a Flow Builder spec ({other})", file=sys.stderr, flush=True)
            continue
        worst = max(worst, subprocess.run([command, "validate", "-f", name], check=False).returncode)
    return worst


def not_a_spec(name: str) -> str:
    """Why the file is another tool's YAML document, or "" when it is (or may be) a spec, which fbc validate
    then checks: one that does not parse, is not a mapping, or has our apiVersion, `kind: App` or a `spec`
    without another tool's apiVersion or kind (a spec with a mistyped header is validated, and told so)."""
    import yaml

    from .spec import API_VERSION

    try:
        document = yaml.safe_load(Path(name).read_text("utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError, RecursionError):  # fbc validate says what is wrong
        return ""
    if not isinstance(document, dict):
        return ""
    api_version, kind = document.get("apiVersion"), document.get("kind")
    if str(api_version).startswith(API_VERSION.split("/")[0] + "/") or kind == "App":  # ours, any version
        return ""
    if api_version is not None or kind is not None:
        return f"apiVersion {api_version}, kind {kind}" if api_version is not None else f"kind {kind}"
    if "spec" in document:
        return ""
    if "jobs" in document:
        return "a GitHub Actions workflow: no apiVersion, kind App nor spec"
    return f"no apiVersion {API_VERSION}, kind App nor spec"


def schema_current(files: list[str]) -> int:
    """1 when a committed schema differs from `fbc schema` (or `fbc schema --profile` for profile.schema.json)."""
    from .schema import profile_schema, render

    stale = 0
    for name in files:
        profile = Path(name).name == "profile.schema.json"
        expected = render(profile_schema() if profile else None)
        try:
            current = Path(name).read_text("utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            print(f"{name}: cannot read: {exc}", file=sys.stderr)
            stale = 1
            continue
        if current != expected:
            flag = " --profile" if profile else ""
            print(f"{name}: differs from `fbc schema{flag}`; run: fbc schema{flag} -o {name}", file=sys.stderr)
            stale = 1
    return stale


HOOKS = {"validate": validate, "schema-current": schema_current}


def main(argv: list[str]) -> int:
    if not argv or argv[0] not in HOOKS:
        print(f"usage: python -m flowbuilder.compiler.precommit {'|'.join(HOOKS)} FILE...", file=sys.stderr)
        return 2
    return HOOKS[argv[0]](argv[1:])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
