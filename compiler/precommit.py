"""The pre-commit hooks of .pre-commit-hooks.yaml. pre-commit passes the changed files as arguments, and
`fbc validate` takes one spec (-f), so `validate` runs it once per file; `schema-current` compares a committed
schema with what this fbc's `fbc schema` prints.

    python -m flowbuilder.compiler.precommit validate FILE...
    python -m flowbuilder.compiler.precommit schema-current FILE...
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path


def validate(files: list[str]) -> int:
    """`fbc validate -f FILE` for each file (its own output: file:line:column lines); the worst exit code."""
    fbc = Path(sys.executable).with_name("fbc")
    command = str(fbc) if fbc.exists() else shutil.which("fbc") or "fbc"
    return max((subprocess.run([command, "validate", "-f", name], check=False).returncode for name in files),
               default=0)


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
