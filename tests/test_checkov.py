"""checkov (PyPI) over every template the tests generate: zero unsuppressed failures, and every suppression
(Metadata {"checkov": {"skip": [{"id", "comment"}]}}, written by compiler/emit/stack.py's skip_checks) has a
reason a reviewer can judge and is still needed.

One checkov process scans each template twice, from two folders of one temporary directory: `as-built/` (the
template as fbc emits it) and `unsuppressed/` (the same with the checkov suppressions taken out of Metadata).
checkov does not evaluate a check it was told to skip, so only the second copy shows whether a suppressed
check would fail at all: a suppression whose check passes there, or that checkov never reported as skipped
(an unknown check ID, or one for another resource type), is stale.
"""

from __future__ import annotations

import copy
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from build_helpers import MATRIX, template
from conftest import IN_CI

MIN_COMMENT = 20
# What a suppression's comment must not be: checkov's own default, or words that promise a reason later.
PLACEHOLDER = re.compile(r"no comment provided|\b(todo|tbd|fixme|xxx+|placeholder|lorem|changeme)\b", re.I)


def checkov_executable() -> str | None:
    """The checkov next to this interpreter (the venv's), else the one on PATH."""
    return shutil.which("checkov", path=str(Path(sys.executable).parent)) or shutil.which("checkov")


Key = tuple[str, str, str]  # (file, "AWS::Type.LogicalId", check ID)


@dataclass(frozen=True)
class Suppression:
    file: str
    resource: str  # AWS::SQS::Queue.JobsQueue, as checkov names resources
    check: str
    comment: str | None

    @property
    def key(self) -> Key:
        return (self.file, self.resource, self.check)


@dataclass
class Scan:
    """What one checkov run found over templates written as-built and unsuppressed."""

    failed: list[dict[str, Any]]  # as-built: must be empty
    skipped: list[dict[str, Any]]  # as-built: one per suppression checkov honoured
    unsuppressed_failed: set[Key]  # what would fail without any suppression
    suppressions: list[Suppression]  # read from the templates' Metadata
    summary: dict[str, Any]
    parsing_errors: list[str]
    scanned: set[str]  # "as-built/<name>", "unsuppressed/<name>": every file checkov reported a result for
    seconds: float
    check_names: dict[str, str] = field(default_factory=dict)

    def __repr__(self) -> str:  # pytest prints the fixture with a failure: the counts, not every result
        return (f"Scan(as built: {len(self.failed)} failed, {len(self.skipped)} skipped of {len(self.suppressions)} "
                f"suppressions in Metadata; without them: {len(self.unsuppressed_failed)} failed; checkov "
                f"{self.summary.get('checkov_version')}, {self.seconds:.1f} s)")


def _suppressions(name: str, doc: dict[str, Any]) -> list[Suppression]:
    out = []
    for logical_id, resource in doc.get("Resources", {}).items():
        for skip in (resource.get("Metadata") or {}).get("checkov", {}).get("skip", []):
            out.append(Suppression(name, f"{resource['Type']}.{logical_id}", str(skip.get("id")), skip.get("comment")))
    return out


def _without_suppressions(doc: dict[str, Any]) -> dict[str, Any]:
    doc = copy.deepcopy(doc)
    for resource in doc.get("Resources", {}).values():
        metadata = resource.get("Metadata")
        if isinstance(metadata, dict) and "checkov" in metadata:
            del metadata["checkov"]
            if not metadata:
                del resource["Metadata"]
    return doc


def scan(templates: dict[str, dict[str, Any]]) -> Scan:
    """Write each template as-built and unsuppressed, run checkov once over both, and sort its results."""
    executable = checkov_executable()
    if executable is None:
        if IN_CI:
            raise RuntimeError("checkov is not installed (pip install -e '.[test]' -c constraints.txt)")
        pytest.skip("checkov is not installed (pip install -e '.[test]' -c constraints.txt)")
    with tempfile.TemporaryDirectory(prefix="fbc-checkov-") as tmp:
        root = Path(tmp)
        for folder, transform in (("as-built", lambda d: d), ("unsuppressed", _without_suppressions)):
            (root / folder).mkdir()
            for name, doc in templates.items():
                (root / folder / f"{name}.json").write_text(json.dumps(transform(doc), indent=1), "utf-8")
        # Offline and quiet about itself: no guideline download from Prisma Cloud, no PyPI update check.
        env = {**os.environ, "CKV_SKIP_PACKAGE_UPDATE_CHECK": "true", "BC_SKIP_MAPPING": "TRUE"}
        started = time.monotonic()
        done = subprocess.run(
            [executable, "-d", str(root), "--framework", "cloudformation", "-o", "json", "--compact",
             "--skip-download"],  # not --quiet: it drops the skipped checks and the parsing errors
            capture_output=True, text=True, timeout=600, env=env, cwd=root)
        seconds = time.monotonic() - started
    if done.returncode not in (0, 1):  # 1: some check failed
        raise RuntimeError(f"checkov exited {done.returncode}: {done.stderr[-2000:]}")
    reports = json.loads(done.stdout)
    report = next(r for r in (reports if isinstance(reports, list) else [reports])
                  if r.get("check_type") == "cloudformation")
    results = report["results"]
    as_built: dict[str, list[dict[str, Any]]] = {"failed": [], "skipped": []}
    unsuppressed: set[Key] = set()
    names: dict[str, str] = {}
    scanned: set[str] = set()
    for kind in ("passed", "failed", "skipped"):
        for check in results.get(f"{kind}_checks", []):
            names[check["check_id"]] = check["check_name"]
            folder, _, file = check["file_path"].lstrip("/").partition("/")
            check["file"] = file.removesuffix(".json")
            scanned.add(f"{folder}/{check['file']}")
            if folder == "as-built" and kind != "passed":
                as_built[kind].append(check)
            elif folder == "unsuppressed" and kind == "failed":
                unsuppressed.add((check["file"], check["resource"], check["check_id"]))
    return Scan(as_built["failed"], as_built["skipped"], unsuppressed,
                [s for name, doc in templates.items() for s in _suppressions(name, doc)],
                report["summary"], [str(e) for e in results.get("parsing_errors", [])], scanned, seconds, names)


def problems(result: Scan) -> dict[str, list[str]]:
    """Everything the gate refuses, by kind, one line each (sorted: the same run, the same message)."""
    honoured = {(c["file"], c["resource"], c["check_id"]) for c in result.skipped}
    declared = {s.key for s in result.suppressions}
    out: dict[str, list[str]] = {
        "failed": sorted(f"{c['check_id']} {c['resource']} in {c['file']}: {c['check_name']}"
                         for c in result.failed),
        "comment": [],
        "stale": [],
        "stray": sorted(f"{c['check_id']} {c['resource']} in {c['file']}: skipped by something other than "
                        f"Metadata.checkov.skip ({c['check_result'].get('suppress_comment')!r})"
                        for c in result.skipped if (c["file"], c["resource"], c["check_id"]) not in declared),
        "parsing": sorted(result.parsing_errors),
    }
    for s in sorted(result.suppressions, key=lambda s: s.key):
        where = f"{s.check} {s.resource} in {s.file}"
        comment = (s.comment or "").strip()
        if len(comment) < MIN_COMMENT or PLACEHOLDER.search(comment) or comment == result.check_names.get(s.check):
            out["comment"].append(f"{where}: the reason {s.comment!r} is not one a reviewer can judge "
                                  f"(at least {MIN_COMMENT} characters, no placeholder, not the check's name)")
        if s.key not in honoured:
            out["stale"].append(f"{where}: checkov runs no such check on this resource (unknown ID, or a check "
                                f"of another resource type)")
        elif s.key not in result.unsuppressed_failed:
            out["stale"].append(f"{where}: passes without the suppression ({result.check_names.get(s.check)})")
    return {kind: lines for kind, lines in out.items() if lines}


@pytest.fixture(scope="module")
def matrix_scan() -> Iterator[Scan]:
    """The one checkov run over every template of the build matrix (4 specs x 2 profiles x 3 environments)."""
    result = scan({"-".join(case): template(*case) for case in MATRIX})
    print(f"\ncheckov {result.summary.get('checkov_version')}: {len(MATRIX)} templates x 2 in {result.seconds:.1f} s; "
          f"{result.summary}", file=sys.stderr)
    yield result


def test_the_scan_covers_every_template(matrix_scan: Scan) -> None:
    """A template checkov could not read would pass silently: each one, in both folders, has results."""
    assert matrix_scan.parsing_errors == []
    names = ["-".join(m) for m in MATRIX]
    assert matrix_scan.scanned == {f"{folder}/{n}" for folder in ("as-built", "unsuppressed") for n in names}


def test_no_unsuppressed_failures(matrix_scan: Scan) -> None:
    failed = problems(matrix_scan).get("failed", [])
    by_check: dict[str, int] = {}
    for line in failed:
        by_check[line.split()[0]] = by_check.get(line.split()[0], 0) + 1
    assert failed == [], (f"{len(failed)} failed check(s) {dict(sorted(by_check.items()))}: fix the template, or "
                          f"suppress with compiler/emit/stack.py's skip_checks and a reason:\n" + "\n".join(failed))


def test_every_suppression_has_a_reason(matrix_scan: Scan) -> None:
    weak = problems(matrix_scan).get("comment", [])
    assert weak == [], "\n".join(weak)


def test_no_suppression_is_stale_or_stray(matrix_scan: Scan) -> None:
    found = problems(matrix_scan)
    stale = found.get("stale", []) + found.get("stray", [])
    assert stale == [], "remove these suppressions (or fix their check ID):\n" + "\n".join(stale)


def test_the_gate_can_fail() -> None:
    """A tiny template with each thing the gate refuses: an unencrypted queue, a placeholder reason, a
    suppression of a check that passes anyway and one of a check that does not exist."""
    unencrypted = {"Type": "AWS::SQS::Queue", "Properties": {"SqsManagedSseEnabled": False}}
    encrypted = {"Type": "AWS::SQS::Queue", "Properties": {"KmsMasterKeyId": "alias/aws/sqs"}}
    broken = {"AWSTemplateFormatVersion": "2010-09-09", "Resources": {
        "BrokenQueue": unencrypted,
        "PlaceholderQueue": {**unencrypted,
                             "Metadata": {"checkov": {"skip": [{"id": "CKV_AWS_27", "comment": "TODO"}]}}},
        "EncryptedQueue": {**encrypted, "Metadata": {"checkov": {"skip": [
            {"id": "CKV_AWS_27", "comment": "kept from before the queue was encrypted, no longer needed"},
            {"id": "CKV_AWS_99999", "comment": "a check that checkov does not have, spelled wrong on purpose"}]}}},
    }}
    found = problems(scan({"broken": broken}))
    assert found["failed"] == ["CKV_AWS_27 AWS::SQS::Queue.BrokenQueue in broken: "
                               "Ensure all data stored in the SQS queue is encrypted"]
    assert [line.split(": ")[0] for line in found["comment"]] == [
        "CKV_AWS_27 AWS::SQS::Queue.PlaceholderQueue in broken"]
    assert found["stale"] == [
        "CKV_AWS_27 AWS::SQS::Queue.EncryptedQueue in broken: passes without the suppression "
        "(Ensure all data stored in the SQS queue is encrypted)",
        "CKV_AWS_99999 AWS::SQS::Queue.EncryptedQueue in broken: checkov runs no such check on this resource "
        "(unknown ID, or a check of another resource type)"]
    assert "stray" not in found and "parsing" not in found
