"""Invalid specs, each with the exact lines `fbc validate` must print (file:line:column: path: message)."""

from __future__ import annotations

from pathlib import Path

import pytest

from conftest import CORPUS, run_fbc
from flowbuilder.compiler import load

CASES = sorted(CORPUS.glob("*.yaml"))


def test_corpus_is_large_enough() -> None:
    assert len(CASES) >= 40


@pytest.mark.parametrize("case", CASES, ids=[c.stem for c in CASES])
def test_invalid_spec_reports_exact_location(case: Path) -> None:
    first = case.read_text("utf-8").partition("\n")[0]
    args = first.removeprefix("# fbc-args: ").split() if first.startswith("# fbc-args: ") else []
    expected = case.with_suffix(".expected").read_text("utf-8")
    result = run_fbc("validate", "-f", case.name, *args, cwd=CORPUS)
    assert result.stdout == expected
    errors = [line for line in expected.splitlines() if ": warning: " not in line]
    assert result.exit_code == (1 if errors else 0)
    assert "Traceback" not in result.output


def _validate(tmp_path: Path, content: bytes) -> tuple[int, str]:
    (tmp_path / "flowbuilder.yaml").write_bytes(content)
    result = run_fbc("validate", cwd=tmp_path)
    return result.exit_code, result.stdout.strip()


def test_not_utf8_names_line_and_column(tmp_path: Path) -> None:
    code, out = _validate(tmp_path, b"apiVersion: x\nkind: App\nmetadata: {name: d\xe9mo}\n")
    assert (code, out) == (1, "flowbuilder.yaml:3:19: file is not valid UTF-8 (byte 0xe9)")


def test_oversized_file_is_refused_before_reading(tmp_path: Path) -> None:
    content = b"# padding\n" * (load.MAX_BYTES // 10 + 1)
    code, out = _validate(tmp_path, content)
    assert code == 1
    assert out == f"flowbuilder.yaml:1:1: file is {len(content)} bytes; the limit is 1048576 bytes (1 MiB)"


def test_billion_laughs_fails_fast(tmp_path: Path) -> None:
    lines = ["a0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    lines += [f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 10) + "]" for i in range(1, 10)]
    code, out = _validate(tmp_path, ("\n".join(lines) + "\n").encode())
    assert code == 1
    assert out.startswith("flowbuilder.yaml:")
    assert out.endswith(f"document expands to more than {load.MAX_NODES} nodes (aliases referring to aliases?)")


def test_deep_nesting_fails_without_crashing(tmp_path: Path) -> None:
    code, out = _validate(tmp_path, b"a: " + b"[" * 100_000 + b"]" * 100_000 + b"\n")
    assert code == 1
    assert out == "flowbuilder.yaml:1:67: YAML syntax error: nesting is deeper than 64 levels"


def test_control_character_is_located(tmp_path: Path) -> None:
    code, out = _validate(tmp_path, b"apiVersion: x\x07\n")
    assert code == 1
    assert out == "flowbuilder.yaml:1:14: YAML syntax error: character '\\x07' is not allowed"


def test_byte_order_mark_is_accepted(tmp_path: Path, spec_text: str) -> None:
    code, out = _validate(tmp_path, b"\xef\xbb\xbf" + spec_text.encode())
    assert (code, out) == (0, "")


def test_yaml_merge_keys_are_supported_and_explicit_keys_win(tmp_path: Path) -> None:
    text = (CORPUS / "visibility-shorter-than-timeout.yaml").read_text("utf-8").replace(
        "    jobs: {visibilityTimeout: 5m}",
        "    base: &base {visibilityTimeout: 5m, retention: 1d}\n    jobs: {<<: *base, visibilityTimeout: 10m}")
    code, out = _validate(tmp_path, text.encode())
    assert code == 0, out
    doc = load.load_file(tmp_path / "flowbuilder.yaml")
    assert doc.data["spec"]["queues"]["jobs"] == {"visibilityTimeout": "10m", "retention": "1d"}


def test_positions_count_lines_as_editors_do(tmp_path: Path) -> None:
    # YAML also breaks lines at NEL (U+0085); editors do not, so neither do our positions.
    code, out = _validate(tmp_path, "kind: App\nx: 'a\u0085b'\n\tbad: 1\n".encode())
    assert (code, out) == (1, "flowbuilder.yaml:3:1: a tab character is used for indentation; YAML indents with "
                              "spaces")
