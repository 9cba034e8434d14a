"""Time `fbc up`: how long until everything is up, and a whole `fbc up --smoke` (start, one workflow through
API, queue and worker, stop), for both profiles. Baseline in the same run: a bare interpreter start.

    python bench/up_speed.py [--runs 5]

Each run is the real CLI in a new process on the repository's flowbuilder.yaml; medians are reported.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
FBC = [sys.executable, "-c", "from flowbuilder.compiler.cli import main; main()"]


def smoke(profile: str) -> tuple[float, float, float]:
    """(seconds until 'is up', seconds until the execution succeeded, seconds in all)."""
    start = time.perf_counter()
    proc = subprocess.Popen([*FBC, "up", "--smoke", "--port", "0", "--profile", profile], cwd=REPO,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    assert proc.stdout is not None
    ready = done = 0.0
    for line in proc.stdout:
        if " is up, " in line and not ready:
            ready = time.perf_counter() - start
        if "smoke: passed" in line:
            done = time.perf_counter() - start
    if proc.wait() != 0 or not done:
        raise SystemExit(f"fbc up --smoke failed for {profile}")
    return ready, done, time.perf_counter() - start


def bare() -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", "pass"], check=True)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5)
    runs = parser.parse_args().runs
    baseline = statistics.median(bare() for _ in range(runs))
    print(f"bare interpreter: {baseline * 1000:.0f} ms median of {runs}")
    for profile in ("standard", "ultra"):
        samples = [smoke(profile) for _ in range(runs)]
        ready, done, total = (statistics.median(s[i] for s in samples) for i in range(3))
        print(f"{profile:<8} up in {ready:.2f} s; execution succeeded at {done:.2f} s (first worker started on "
              f"the message); whole --smoke incl. stop {total:.2f} s; medians of {runs}")


if __name__ == "__main__":
    main()
