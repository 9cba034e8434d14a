"""Issue 15: the profile belongs to the spec. spec.environments.<env>.profile, then spec.profile, then standard;
--profile overrides and says so in one line on stderr. Every verb that compiles follows it (build, cost, graph,
up, diff, apply), and --env follows validate's rule for names in every verb (issue 14's follow-up)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conftest import REPO, run_fbc
from flowbuilder.compiler.build import plan_spec
from flowbuilder.compiler.profiles import choose

MINIMAL = (REPO / "tests" / "specs" / "minimal.yaml").read_text("utf-8")


def spec(tmp_path: Path, base: str | None, dev: str | None = None, name: str = "flowbuilder.yaml") -> str:
    text = MINIMAL.replace("  region: eu-west-1\n", "  region: eu-west-1\n" + (f"  profile: {base}\n" if base else ""))
    if dev:
        text += f"  environments:\n    dev: {{profile: {dev}}}\n"
    path = tmp_path / name
    path.write_text(text, "utf-8")
    return str(path)


def built(tmp_path: Path, *args: str) -> tuple[str, str]:
    """(the summary's first line, stderr) of fbc build."""
    result = run_fbc("build", *args, "-o", str(tmp_path / "out"))
    assert result.exit_code == 0, result.output
    return result.stdout.splitlines()[0], result.stderr


def test_the_spec_chooses_per_environment_then_base_then_standard(tmp_path: Path) -> None:
    assert choose({}, "dev", None).ref == "standard"
    data = {"spec": {"profile": "ultra", "environments": {"prod": {"profile": "standard"}}}}
    assert (choose(data, "dev", None).ref, choose(data, "dev", None).source) == ("ultra", "spec.profile")
    assert choose(data, "prod", None).source == "spec.environments.prod.profile"
    assert choose("not a mapping", "dev", None).ref == "standard"  # an invalid spec: validation says so later

    path = spec(tmp_path, "standard", dev="ultra")
    assert built(tmp_path, "-f", path) == ("tiny-dev: 23 resources, 6 parameters, 2 outputs (ultra profile, dev)", "")
    first, said = built(tmp_path, "-f", path, "--env", "prod")
    assert "(standard profile, prod)" in first and said == ""
    assert plan_spec(path, None, "staging").profile == "standard"


def test_profile_flag_overrides_and_says_so(tmp_path: Path) -> None:
    path = spec(tmp_path, "ultra")
    first, said = built(tmp_path, "-f", path, "--profile", "standard")
    assert "(standard profile, dev)" in first
    assert said == "fbc: --profile standard overrides spec.profile (ultra)\n"
    assert built(tmp_path, "-f", path, "--profile", "ultra")[1] == ""  # the same choice: nothing to say
    assert built(tmp_path, "-f", spec(tmp_path, None), "--profile", "ultra")[1] == ""  # the spec names none


@pytest.mark.parametrize("verb", [["cost", "--prices-region", "us-east-1", "--format", "json"], ["graph"]])
def test_cost_and_graph_follow_the_spec(tmp_path: Path, verb: list[str]) -> None:
    result = run_fbc(verb[0], "-f", spec(tmp_path, "ultra"), *verb[1:])
    assert result.exit_code == 0, result.output
    if verb[0] == "cost":
        assert json.loads(result.stdout)["profile"] == "ultra"
    else:
        assert "title: tiny-dev (ultra profile)" in result.stdout


def test_a_profile_file_is_relative_to_the_spec_and_an_unknown_one_is_named(tmp_path: Path) -> None:
    (tmp_path / "cheap.yaml").write_text(
        "apiVersion: flowbuilder.dev/v1alpha1\nkind: Profile\nmetadata: {name: cheap}\nextends: ultra\n"
        "spec: {monitoring: {logRetentionDays: 3}}\n", "utf-8")
    path = spec(tmp_path, "cheap.yaml")
    assert "(cheap profile, dev)" in run_fbc("build", "-f", path, "-o", str(tmp_path / "out")).stdout
    unknown = run_fbc("build", "-f", spec(tmp_path, "ultar"), "-o", str(tmp_path / "out"))
    assert (unknown.exit_code, unknown.stderr) == (2, "fbc: spec.profile: unknown profile 'ultar': use one of "
                                                      "standard, ultra or a path to a file (relative to the spec)\n")


def test_the_schema_knows_profile(tmp_path: Path) -> None:
    schema = json.loads((REPO / "schema" / "flowbuilder.schema.json").read_text("utf-8"))
    assert "profile" in schema["definitions"]["AppSpec"]["properties"]
    assert "profile" in schema["definitions"]["Environment"]["properties"]
    bad = run_fbc("validate", "-f", spec(tmp_path, "3"))  # not a name: the model says so, located
    assert bad.exit_code == 1 and "spec.profile" in bad.stdout


def test_init_runs_dev_on_ultra_and_the_rest_on_standard(tmp_path: Path) -> None:
    assert run_fbc("init", "--name", "demo", str(tmp_path)).exit_code == 0
    path = str(tmp_path / "flowbuilder.yaml")
    assert "(ultra profile, dev)" in built(tmp_path, "-f", path)[0]
    assert "(standard profile, prod)" in built(tmp_path, "-f", path, "--env", "prod")[0]
    assert "(standard profile, staging)" in built(tmp_path, "-f", path, "--env", "staging")[0]


@pytest.mark.parametrize("verb", [["build"], ["cost"], ["up", "--smoke"], ["graph"], ["validate"], ["diff"],
                                  ["status"]])
def test_every_verb_refuses_a_bad_environment_name_alike(verb: list[str]) -> None:
    result = run_fbc(*verb, "-f", str(REPO / "tests" / "specs" / "minimal.yaml"), "--env", "Bad_Env")
    assert (result.exit_code, result.stdout, result.stderr) == (
        2, "", "fbc: --env 'Bad_Env' is not a valid environment name (lowercase letters, digits, '-')\n")


# --- a deployed stack's profile (its `profile` tag): switching it is refused unless asked -------------------

def test_switching_a_deployed_ultra_stack_to_standard_is_refused_unless_asked(moto_server: str,
                                                                               tmp_path: Path) -> None:
    from test_deploy import NETWORK, clean_moto, client, fbc

    aws = clean_moto(moto_server, tmp_path)
    path = spec(tmp_path, "ultra")
    assert fbc(aws, "apply", "-f", path, *NETWORK, "--yes").returncode == 0
    cfn = client(aws, "cloudformation")
    tags = {t["Key"]: t["Value"] for t in cfn.describe_stacks(StackName="tiny-dev")["Stacks"][0]["Tags"]}
    assert tags["profile"] == "ultra"
    executed = cfn.list_change_sets(StackName="tiny-dev")["Summaries"]  # moto lists the executed one still

    standard = spec(tmp_path, "standard", name="edited.yaml")  # the spec's profile edited
    refused = fbc(aws, "apply", "-f", standard, "--yes")
    assert refused.returncode == 1 and refused.stdout == ""
    lines = refused.stderr.splitlines()
    assert lines[0] == "switching tiny-dev from the ultra profile to standard:"
    assert any(line.startswith("  removes or replaces ") and "WorkerPipe" in line for line in lines), lines
    assert "to migrate by hand:" in lines
    assert lines[-1] == ("fbc: tiny-dev runs the ultra profile; this would switch it to standard, deleting or "
                         "replacing what is listed above: pass --change-profile to do so")
    diff = fbc(aws, "diff", "-f", standard)
    assert (diff.returncode, diff.stdout) == (2, "") and diff.stderr.splitlines()[-1] == lines[-1]
    overridden = fbc(aws, "diff", "-f", path, "--profile", "standard")  # the same switch through --profile
    assert overridden.returncode == 2
    assert overridden.stderr.splitlines()[0] == "fbc: --profile standard overrides spec.profile (ultra)"

    # Asked: the switch is listed and goes on to the change set, which CI without --yes refuses as risky
    # (it removes resources); nothing is deployed and the stack keeps its profile.
    asked = fbc(aws, "apply", "-f", standard, "--change-profile")
    assert asked.returncode == 1
    assert asked.stderr.startswith("switching tiny-dev from the ultra profile to standard:")
    assert "Update tiny-dev:" in asked.stdout
    assert asked.stderr.splitlines()[-1].endswith("confirm on a terminal, or pass --yes")
    stack = cfn.describe_stacks(StackName="tiny-dev")["Stacks"][0]
    assert stack["StackStatus"] == "CREATE_COMPLETE"
    assert {t["Key"]: t["Value"] for t in stack["Tags"]}["profile"] == "ultra"
    assert cfn.list_change_sets(StackName="tiny-dev")["Summaries"] == executed  # the refused one is deleted
    shown = fbc(aws, "diff", "-f", standard, "--change-profile")
    assert shown.returncode == 1 and "- WorkerPipe" in shown.stdout, shown.stderr


def test_switching_standard_to_ultra_names_the_database_and_the_load_balancer() -> None:
    """standard -> ultra deletes RDS and the load balancer. moto cannot deploy standard (its KMS key with tags),
    so the deployed stack is botocore's Stubber: CloudFormation and ELBv2 answer as AWS does."""
    import boto3
    from botocore.stub import Stubber

    from flowbuilder.compiler.build import compile_spec
    from flowbuilder.compiler.deploy.aws import Aws, StackInfo
    from flowbuilder.compiler.deploy.switch import profile_switch

    spec_file = REPO / "flowbuilder.yaml"
    deployed_template = compile_spec(spec_file, "standard", "dev").built.body
    new = json.loads(compile_spec(spec_file, "ultra", "dev").built.body)
    clients = {name: boto3.client(name, region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")
               for name in ("cloudformation", "elbv2")}

    class Session:
        def client(self, service: str, config: object = None) -> object:
            return clients[service]

    stack_id = "arn:aws:cloudformation:us-east-1:123456789012:stack/flow-builder-dev/1"
    balancer = "arn:aws:elasticloadbalancing:us-east-1:123456789012:loadbalancer/app/flow-b-LoadB/1"
    dns = "flow-b-LoadB-1.us-east-1.elb.amazonaws.com"
    with Stubber(clients["cloudformation"]) as cfn, Stubber(clients["elbv2"]) as elb:
        cfn.add_response("describe_stacks", {"Stacks": [{
            "StackName": "flow-builder-dev", "StackId": stack_id, "StackStatus": "UPDATE_COMPLETE",
            "CreationTime": "2026-11-29T00:00:00Z", "Tags": [{"Key": "profile", "Value": "standard"}]}]},
            {"StackName": stack_id})
        cfn.add_response("get_template", {"TemplateBody": deployed_template},
                         {"StackName": stack_id, "TemplateStage": "Original"})
        cfn.add_response("list_stack_resources", {"StackResourceSummaries": [
            {"LogicalResourceId": "Database", "PhysicalResourceId": "fb-dev-db-abc123", "ResourceType": _RDS,
             "LastUpdatedTimestamp": "2026-11-29T00:00:00Z", "ResourceStatus": "CREATE_COMPLETE"},
            {"LogicalResourceId": "LoadBalancer", "PhysicalResourceId": balancer, "ResourceType": _ELB,
             "LastUpdatedTimestamp": "2026-11-29T00:00:00Z", "ResourceStatus": "CREATE_COMPLETE"}]},
            {"StackName": stack_id})
        elb.add_response("describe_load_balancers", {"LoadBalancers": [{"LoadBalancerArn": balancer,
                                                                          "DNSName": dns}]},
                         {"LoadBalancerArns": [balancer]})
        deployed = StackInfo("flow-builder-dev", stack_id, "UPDATE_COMPLETE", "", {}, {}, False)
        switch = profile_switch(Aws(Session()), "flow-builder-dev", "ultra", new, deployed)
        cfn.assert_no_pending_responses()
        elb.assert_no_pending_responses()
    assert switch is not None
    assert switch.lines[:3] == (
        "switching flow-builder-dev from the standard profile to ultra:",
        "  deletes the database fb-dev-db-abc123 (Database); CloudFormation first takes its final snapshot "
        "(DeletionPolicy Snapshot), named by CloudFormation after the stack: aws rds describe-db-snapshots "
        "--db-instance-identifier fb-dev-db-abc123 --snapshot-type manual",
        f"  deletes the load balancer {dns} (LoadBalancer): that DNS name stops answering")
    assert switch.lines[3].startswith("  removes or replaces 70 more resource(s): ")
    assert switch.lines[4:] == (
        "to migrate by hand:",
        "  the data: restore the final snapshot (or pg_dump the database before applying) into your external "
        "PostgreSQL, and put its URL in the DatabaseUrlParameter SSM parameter",
        "  the clients: move them (DNS records, API users) from the load balancer's DNS name to the function URL "
        "in the stack's outputs after applying")


_RDS, _ELB = "AWS::RDS::DBInstance", "AWS::ElasticLoadBalancingV2::LoadBalancer"
