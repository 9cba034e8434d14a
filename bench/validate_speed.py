"""Time `fbc validate flowbuilder.yaml` against the floor of its own imports, in the same run.

    python bench/validate_speed.py [--runs 31] [--spec flowbuilder.yaml]

The floor is `python -c "import click, yaml, pydantic"` in the same interpreter. Runs alternate between the
two commands so machine noise hits both alike; the report gives medians, the ratio, and the top of
`python -X importtime` for fbc validate. Targets (issue 2): ratio <= 1.5 and median < 400 ms.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def _time(cmd: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    subprocess.run(cmd, check=False, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    return time.perf_counter() - start


def _importtime(cmd: list[str], env: dict[str, str], top: int) -> list[tuple[int, str]]:
    proc = subprocess.run([sys.executable, "-X", "importtime", *cmd[1:]], capture_output=True, text=True, env=env)
    rows = []
    for line in proc.stderr.splitlines():
        if line.startswith("import time:") and "|" in line and "cumulative" not in line:
            _, cumulative, name = line.split("|")
            if not name.startswith("    "):  # top-level imports only (two levels of indent at most)
                rows.append((int(cumulative), name.rstrip()))
    return sorted(rows, reverse=True)[:top]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=31)
    parser.add_argument("--spec", default=str(REPO / "flowbuilder.yaml"))
    args = parser.parse_args()

    fbc = shutil.which("fbc", path=str(Path(sys.executable).parent)) or "fbc"
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "0"}
    floor_cmd = [sys.executable, "-c", "import click, yaml, pydantic"]
    fbc_cmd = [sys.executable, fbc, "validate", "-f", args.spec]
    if subprocess.run(fbc_cmd, capture_output=True, env=env).returncode != 0:
        sys.exit(f"fbc validate -f {args.spec} failed; fix the spec first")
    for _ in range(3):  # warm caches and .pyc files
        _time(floor_cmd, env)
        _time(fbc_cmd, env)
    floor, ours = [], []
    for _ in range(args.runs):
        floor.append(_time(floor_cmd, env))
        ours.append(_time(fbc_cmd, env))
    floor_ms, ours_ms = statistics.median(floor) * 1000, statistics.median(ours) * 1000
    print(f"runs: {args.runs} each, alternating; python {sys.version.split()[0]}")
    print(f"floor  import click, yaml, pydantic : median {floor_ms:6.1f} ms  (min {min(floor) * 1000:.1f})")
    print(f"fbc validate {Path(args.spec).name:<19}: median {ours_ms:6.1f} ms  (min {min(ours) * 1000:.1f})")
    print(f"ratio fbc / floor                  : {ours_ms / floor_ms:.2f}  (target <= 1.5; median < 400 ms)")
    print("\nlargest imports of fbc validate (python -X importtime, cumulative microseconds):")
    for cumulative, name in _importtime(fbc_cmd, env, 15):
        print(f"  {cumulative:>8}  {name.strip()}")


if __name__ == "__main__":
    main()
