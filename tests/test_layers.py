"""The layers' import rules: the compiler uses the runtime only through its public API for hosts
(runtime/local.py) and the contract both sides import (runtime/contract.py); the runtime imports nothing from
the compiler (its image ships without it)."""

from __future__ import annotations

import ast

from conftest import REPO


def _imports(package: str) -> dict[str, set[str]]:
    """Absolute flowbuilder.* modules each file of `package` imports (relative imports stay inside it)."""
    found: dict[str, set[str]] = {}
    for path in sorted((REPO / package).rglob("*.py")):
        names = set()
        for node in ast.walk(ast.parse(path.read_text("utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names |= {node.module} | {f"{node.module}.{a.name}" for a in node.names}
            elif isinstance(node, ast.Import):
                names |= {a.name for a in node.names}
        found[str(path.relative_to(REPO))] = {n for n in names if n.startswith("flowbuilder.")}
    return found


def test_the_compiler_uses_only_the_runtimes_public_api() -> None:
    public = ("flowbuilder.runtime.local", "flowbuilder.runtime.contract")

    def allowed(name: str) -> bool:
        return name == "flowbuilder.runtime" or any(name == m or name.startswith(m + ".") for m in public)

    wrong = {f: sorted(n for n in names if n.startswith("flowbuilder.runtime") and not allowed(n))
             for f, names in _imports("compiler").items()}
    assert {f: n for f, n in wrong.items() if n} == {}


def test_the_runtime_imports_nothing_from_the_compiler() -> None:
    wrong = {f: sorted(n for n in names if not n.startswith("flowbuilder.runtime"))
             for f, names in _imports("runtime").items()}
    assert {f: n for f, n in wrong.items() if n} == {}


def test_only_the_runtimes_settings_read_the_environment() -> None:
    """runtime/config.py reads every variable (its table lists them); other modules get Settings."""
    readers = sorted(str(p.relative_to(REPO)) for p in (REPO / "runtime").rglob("*.py")
                     if "os.environ" in p.read_text("utf-8") or "getenv" in p.read_text("utf-8"))
    assert readers == ["runtime/config.py"], readers
