"""Time `fbc build` for both profiles: the repository's flowbuilder.yaml, generated specs of growing size,
and the generated 100-services/100-queues/100-schedules spec (which must stop at the 500-resource limit).

    python bench/build_speed.py [--runs 7]

Each case runs the real CLI in a new process (wall time, median of --runs) and reports resources and the
time per resource, to show how build time grows with size.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from specgen import generate

REPO = Path(__file__).resolve().parent.parent


def _run(fbc: str, spec: Path, profile: str, out: Path) -> tuple[float, int, str]:
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, fbc, "build", "-f", str(spec), "--profile", profile, "--env", "prod",
                           "-o", str(out)], capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        return elapsed, 0, proc.stderr.strip().splitlines()[-1][:90]
    template = next(out.glob("*-prod.template.json"))
    return elapsed, len(json.loads(template.read_text())["Resources"]), "ok"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    fbc = shutil.which("fbc", path=str(Path(sys.executable).parent)) or "fbc"
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        cases = {"flowbuilder.yaml": REPO / "flowbuilder.yaml"}
        for n in (1, 4, 8, 12, 100):
            path = work / f"gen{n}.yaml"
            path.write_text(generate(n))
            cases[f"generated n={n}"] = path
        print(f"{'case':<20} {'profile':<9} {'median ms':>9} {'resources':>9} {'ms/resource':>11}  result")
        for label, spec in cases.items():
            for profile in ("standard", "ultra"):
                times, count, status = [], 0, ""
                for i in range(args.runs):
                    out = work / f"out-{label}-{profile}-{i}".replace(" ", "_").replace("=", "")
                    elapsed, count, status = _run(fbc, spec, profile, out)
                    times.append(elapsed * 1000)
                median = statistics.median(times)
                per = f"{median / count:11.2f}" if count else f"{'-':>11}"
                print(f"{label:<20} {profile:<9} {median:9.0f} {count:9d} {per}  {status}")


if __name__ == "__main__":
    main()
