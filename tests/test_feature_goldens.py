"""Each feature's golden pair (tests/feature_goldens.py): what one spec fragment adds to the minimal spec."""

from __future__ import annotations

from pathlib import Path

import pytest
from feature_goldens import cases, render


@pytest.mark.parametrize(("fragment", "profile", "golden"), cases(), ids=lambda v: v.stem if isinstance(v, Path) else v)
def test_a_feature_adds_what_its_golden_says(fragment: Path, profile: str, golden: Path) -> None:
    assert golden.is_file(), f"no golden for {fragment.name} ({profile}): run python tests/golden/regenerate.py"
    assert render(fragment, profile) == golden.read_text("utf-8"), (
        f"{fragment.name} ({profile}) changed; review, then run python tests/golden/regenerate.py")


def test_every_golden_has_its_fragment() -> None:
    expected = {golden for _, _, golden in cases()}
    found = set((Path(__file__).parent / "golden" / "features").glob("*.json"))
    assert found == expected, "stale feature goldens: " + ", ".join(sorted(p.name for p in found - expected))
