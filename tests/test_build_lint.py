"""Every template the tests generate passes cfn-lint with zero errors and zero warnings."""

from __future__ import annotations

import pytest
from cfnlint.api import ManualArgs, lint

from build_helpers import MATRIX, compiled


@pytest.mark.parametrize(("spec", "profile", "env"), MATRIX, ids=["-".join(m) for m in MATRIX])
def test_cfn_lint_is_clean(spec: str, profile: str, env: str) -> None:
    built = compiled(spec, profile, env)
    matches = lint(built.built.body, config=ManualArgs(regions=[built.plan.region]))
    problems = [f"{m.rule.id} {m.message} ({'/'.join(map(str, m.path or []))})" for m in matches
                if m.rule.id[0] in "EW"]
    assert problems == []


def test_yaml_output_is_clean_too() -> None:
    built = compiled("full", "standard", "prod")
    matches = lint(built.template_text("yaml"), config=ManualArgs(regions=[built.plan.region]))
    assert [m.rule.id for m in matches if m.rule.id[0] in "EW"] == []
