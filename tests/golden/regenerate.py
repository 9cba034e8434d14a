"""Rewrite the golden templates after a reviewed change: python tests/golden/regenerate.py

Each file is <spec>-<profile>-<environment>.json, the exact bytes `fbc build` writes; `git diff` on this
folder is the review of what a compiler change does to real stacks. features/ holds the smaller pairs
(tests/feature_goldens.py): what one spec fragment adds to the minimal spec's dev template.
"""

from __future__ import annotations

import sys
from pathlib import Path

from flowbuilder.compiler.build import compile_spec

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/, for feature_goldens
import feature_goldens

REPO = Path(__file__).resolve().parents[2]
GOLDEN = {"flow-builder": REPO / "flowbuilder.yaml", "full": REPO / "tests" / "specs" / "full.yaml"}


def main() -> None:
    here = Path(__file__).parent
    for name, spec in GOLDEN.items():
        for profile in ("standard", "ultra"):
            for env in ("dev", "staging", "prod"):
                target = here / f"{name}-{profile}-{env}.json"
                target.write_text(compile_spec(spec, profile, env).built.body, "utf-8")
                print(f"wrote {target.relative_to(REPO)}")
    for fragment, profile, target in feature_goldens.cases():
        target.write_text(feature_goldens.render(fragment, profile), "utf-8")
        print(f"wrote {target.relative_to(REPO)}")


if __name__ == "__main__":
    main()
