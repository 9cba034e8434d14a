"""Issue 14, item 1: parameter values given to diff and apply (--param, --image) are compared with the deployed
ones, checked before AWS sees them, and shown; against moto's server (test_deploy.py's fixture)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from test_deploy import MINIMAL, NETWORK, clean_moto, client, fbc

SPEC = ["-f", str(MINIMAL), "--profile", "ultra"]
REPOSITORY = "210987654321.dkr.ecr.eu-west-1.amazonaws.com/tiny-runtime"
OTHER_VPC = ["--param", "VpcId=vpc-other", "--param", "SubnetIds=subnet-1,subnet-2"]


@pytest.fixture
def aws(moto_server: str, tmp_path: Path) -> dict[str, str]:
    return clean_moto(moto_server, tmp_path)


def deployed(aws: dict[str, str], name: str) -> str:
    stack = client(aws, "cloudformation").describe_stacks(StackName="tiny-dev")["Stacks"][0]
    return str({p["ParameterKey"]: p["ParameterValue"] for p in stack["Parameters"]}[name])


def test_diff_compares_parameter_values_with_the_deployed_ones(aws: dict[str, str]) -> None:
    unknown = fbc(aws, "diff", *SPEC, "--param", "Bogus=1")  # nothing deployed yet: still checked
    assert unknown.returncode == 2
    assert unknown.stderr.startswith("fbc: unknown parameter(s) Bogus; the template has: AlertEmail, ")
    assert fbc(aws, "apply", *SPEC, *NETWORK, "--yes").returncode == 0

    moved = fbc(aws, "diff", *SPEC, "--param", "VpcId=vpc-other")
    assert moved.returncode == 1, moved.stderr
    assert 'Parameter values\n~ VpcId: "vpc-0abc" -> "vpc-other"\n' in moved.stdout
    assert "~ TaskSecurityGroup (AWS::EC2::SecurityGroup) [replace]" in moved.stdout  # VpcId is create-only
    assert '    Properties.VpcId (Ref VpcId): "vpc-0abc" -> "vpc-other" (replaces)' in moved.stdout
    as_json = json.loads(fbc(aws, "diff", *SPEC, "--param", "VpcId=vpc-other", "--format", "json").stdout)
    assert as_json["empty"] is False
    assert as_json["parameterValues"] == [{"name": "VpcId", "old": "vpc-0abc", "new": "vpc-other", "rollback": False}]

    image = fbc(aws, "diff", *SPEC, "--image", f"runtime={REPOSITORY}:3.0.0")
    assert image.returncode == 1
    assert f'~ RuntimeImage: "{REPOSITORY}:2.3.1" -> "{REPOSITORY}:3.0.0"' in image.stdout
    same = fbc(aws, "diff", *SPEC, "--param", "VpcId=vpc-0abc", "--image", f"runtime={REPOSITORY}:2.3.1")
    assert (same.returncode, same.stdout.strip()) == (0, "no differences")


def test_unknown_parameters_and_foreign_images_are_errors_in_diff_and_apply(aws: dict[str, str]) -> None:
    assert fbc(aws, "apply", *SPEC, *NETWORK, "--yes").returncode == 0
    foreign = (f"--image runtime=docker.io/evil:latest: not an image of {REPOSITORY}, the spec's repository (its "
               f"task roles may pull only from it; to move, change spec.runtime.image)")
    for verb, code in (("diff", 2), ("apply", 1)):
        extra = [*NETWORK, "--yes"] if verb == "apply" else []
        bogus = fbc(aws, verb, *SPEC, *extra, "--param", "Bogus=1")
        assert bogus.returncode == code and "unknown parameter(s) Bogus" in bogus.stderr, verb
        evil = fbc(aws, verb, *SPEC, *extra, "--image", "runtime=docker.io/evil:latest")
        assert (evil.returncode, evil.stderr.strip()) == (code, f"fbc: {foreign}"), verb
        # The same through --param: the template's AllowedPattern, checked here (moto does not check it).
        raw = fbc(aws, verb, *SPEC, *extra, "--param", "RuntimeImage=docker.io/evil:latest")
        assert (raw.returncode, raw.stderr.strip()) == (
            code, "fbc: --param RuntimeImage=docker.io/evil:latest: must be an image of the repository tiny-runtime"
        ), verb
        service = fbc(aws, verb, *SPEC, *extra, "--image", "nope=x:1")
        assert service.returncode == code and "no service 'nope'" in service.stderr, verb
    assert deployed(aws, "RuntimeImage") == f"{REPOSITORY}:2.3.1"


def test_apply_shows_a_parameter_change_and_asks_for_what_it_replaces(aws: dict[str, str]) -> None:
    assert fbc(aws, "apply", *SPEC, *NETWORK, "--yes").returncode == 0
    refused = fbc(aws, "apply", *SPEC, *OTHER_VPC)
    assert refused.returncode == 1
    assert '  parameter VpcId: "vpc-0abc" -> "vpc-other"' in refused.stdout
    assert "replaces TaskSecurityGroup" in refused.stderr and refused.stderr.strip().endswith("pass --yes")
    assert deployed(aws, "VpcId") == "vpc-0abc"
