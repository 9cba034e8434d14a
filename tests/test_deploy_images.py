"""Issue 14, item 2: the image rule. The deployed image stays until `--image` or an edit of the spec's image
changes it; every image change is shown, and one back to an older tag asks (or needs --yes in CI). Against
moto's server (test_deploy.py's fixture), and the tag comparison on its own."""

from __future__ import annotations

from pathlib import Path

import pytest
from test_deploy import MINIMAL, NETWORK, clean_moto, client, fbc

REPOSITORY = "210987654321.dkr.ecr.eu-west-1.amazonaws.com/tiny-runtime"
SPEC = ["-f", str(MINIMAL), "--profile", "ultra"]


@pytest.fixture
def aws(moto_server: str, tmp_path: Path) -> dict[str, str]:
    return clean_moto(moto_server, tmp_path)


def running(aws: dict[str, str]) -> str:
    stack = client(aws, "cloudformation").describe_stacks(StackName="tiny-dev")["Stacks"][0]
    image = {p["ParameterKey"]: p["ParameterValue"] for p in stack["Parameters"]}["RuntimeImage"]
    return str(image).removeprefix(REPOSITORY + ":")


def spec(tmp_path: Path, name: str, *, memory: int = 512, tag: str = "2.3.1") -> list[str]:
    text = MINIMAL.read_text("utf-8").replace("timeout: 5m}", f"timeout: 5m, memory: {memory}}}")
    path = tmp_path / f"{name}.yaml"
    path.write_text(text.replace("tiny-runtime:2.3.1", f"tiny-runtime:{tag}"), "utf-8")
    return ["-f", str(path), "--profile", "ultra"]


def test_the_deployed_image_stays_until_image_or_the_spec_changes_it(aws: dict[str, str], tmp_path: Path) -> None:
    first = fbc(aws, "apply", *SPEC, *NETWORK, "--image", f"runtime={REPOSITORY}:3.0.0", "--yes")
    assert first.returncode == 0, first.stderr
    assert running(aws) == "3.0.0"
    plain = fbc(aws, "apply", *SPEC)
    assert (plain.returncode, plain.stdout.strip()) == (0, "tiny-dev: no changes")

    # A template change applied without --image keeps what runs (it used to go back to the spec's 2.3.1).
    bigger = spec(tmp_path, "bigger", memory=1024)
    pending = fbc(aws, "diff", *bigger)
    assert pending.returncode == 1 and "RuntimeImage" not in pending.stdout
    kept = fbc(aws, "apply", *bigger, *NETWORK, "--yes")
    assert kept.returncode == 0, kept.stderr
    assert "RuntimeImage" not in kept.stdout and running(aws) == "3.0.0"

    # Editing the spec's image is a decision: it is applied, and shown.
    edited = spec(tmp_path, "edited", memory=1024, tag="3.1.0")
    shown = fbc(aws, "diff", *edited)
    assert f'~ RuntimeImage: "{REPOSITORY}:3.0.0" -> "{REPOSITORY}:3.1.0"' in shown.stdout
    moved = fbc(aws, "apply", *edited, *NETWORK, "--yes")
    assert moved.returncode == 0, moved.stderr
    assert f'  parameter RuntimeImage: "{REPOSITORY}:3.0.0" -> "{REPOSITORY}:3.1.0"' in moved.stdout
    assert running(aws) == "3.1.0"


def test_an_older_tag_asks(aws: dict[str, str], tmp_path: Path) -> None:
    assert fbc(aws, "apply", *SPEC, *NETWORK, "--image", f"runtime={REPOSITORY}:3.0.0", "--yes").returncode == 0
    back = fbc(aws, "diff", *SPEC, "--image", f"runtime={REPOSITORY}:2.9.9")
    assert f'~ RuntimeImage: "{REPOSITORY}:3.0.0" -> "{REPOSITORY}:2.9.9" (older tag)' in back.stdout
    # Back by --image, or by an edit of the spec's image: the same rule.
    for how in ([*SPEC, "--image", f"runtime={REPOSITORY}:2.9.9"], spec(tmp_path, "older", tag="2.9.9")):
        refused = fbc(aws, "apply", *how, *NETWORK)
        assert refused.returncode == 1, how
        # Any new image replaces an ECS task definition (CloudFormation's change set says so on AWS; moto's says
        # nothing, the offline table does); going back is said on its own, for images only Lambda runs too.
        assert refused.stderr.strip() == ("fbc: this change replaces WorkerTaskDefinition; rolls RuntimeImage back "
                                          "from tag 3.0.0 to 2.9.9: confirm on a terminal, or pass --yes"), how
        assert running(aws) == "3.0.0"
    assert fbc(aws, "apply", *SPEC, *NETWORK, "--image", f"runtime={REPOSITORY}:2.9.9", "--yes").returncode == 0
    assert running(aws) == "2.9.9"


@pytest.mark.parametrize(("old", "new", "older"), [
    ("r:3.0.0", "r:2.9.9", True), ("r:1.10.0", "r:1.9.0", True), ("r:1.9.0", "r:1.10.0", False),
    ("r:v2", "r:v1.5", True), ("r:2.0.0", "r:2.0.0-rc1", False), ("r:2", "r:2.0", False),
    ("r:3.0.0", "s:2.0.0", False),  # another repository: not the same line of tags
    ("r:latest", "r:1.0.0", False), ("r:1a2b3c4", "r:0", False),  # git SHAs and names do not compare
    ("r@sha256:" + "a" * 64, "r:1.0.0", False), ("reg:5000/r:2", "reg:5000/r:1", True),
])
def test_older_tag(old: str, new: str, older: bool) -> None:
    from flowbuilder.compiler.deploy.parameters import older_tag

    assert (older_tag(old, new) is not None) == older


def test_a_rollback_alone_is_risky() -> None:
    from flowbuilder.compiler.deploy.diff import TemplateDiff, ValueChange

    back = ValueChange("FrontendImage", f"{REPOSITORY}:3.0.0", f"{REPOSITORY}:2.9.9", ("3.0.0", "2.9.9"))
    assert TemplateDiff(values=[back]).risky == ["rolls FrontendImage back from tag 3.0.0 to 2.9.9"]
    ahead = ValueChange("FrontendImage", f"{REPOSITORY}:3.0.0", f"{REPOSITORY}:3.0.1")
    assert TemplateDiff(values=[ahead]).risky == [] and not TemplateDiff(values=[ahead]).empty
