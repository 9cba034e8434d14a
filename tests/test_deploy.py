"""fbc apply/diff/destroy/status end to end against moto's server over real HTTP (AWS_ENDPOINT_URL).

moto runs CloudFormation for what it models (SQS, IAM, ECS, Lambda, SNS, S3...) and skips the rest (alarms,
Pipes, Scheduler); its events are few. Failures it cannot produce are in test_deploy_stubbed.py.
Known moto gaps worked around here: an update that keeps a List<> parameter's previous value crashes moto
(the parameters are passed again), and moto cannot create a KMS key with tags (standard's alert key), so
the stacks deployed here use the ultra profile.
"""

from __future__ import annotations

import json
import os
import subprocess
import urllib.request
from pathlib import Path
from typing import Any

import boto3
import pytest
from click.testing import CliRunner, Result

from conftest import REPO, free_port, run_fbc_process
from flowbuilder.compiler.cli import cli
from specgen import generate

NETWORK = ["--param", "VpcId=vpc-0abc", "--param", "SubnetIds=subnet-1,subnet-2"]
MINIMAL = REPO / "tests" / "specs" / "minimal.yaml"


@pytest.fixture
def aws(moto_server: str, tmp_path: Path) -> dict[str, str]:
    return clean_moto(moto_server, tmp_path)


def clean_moto(moto_server: str, tmp_path: Path) -> dict[str, str]:
    """A clean moto, and the environment a user's shell would have (the test_deploy_*.py files' fixture too)."""
    request = urllib.request.Request(f"{moto_server}/moto-api/reset", method="POST")
    urllib.request.urlopen(request, timeout=10)
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update({"AWS_ENDPOINT_URL": moto_server, "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                "AWS_CONFIG_FILE": str(tmp_path / "none"), "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "none"),
                "FBC_POLL_SECONDS": "0.1", "CI": "true",
                # The deploy tests' images and secrets are not in moto's ECR and SSM: their pre-flight is off
                # (test_preflight.py turns it on, with what it checks created or not).
                "FBC_PREFLIGHT": "off"})
    return env


def fbc(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return run_fbc_process(*args, env=env, timeout=300)


def invoke(env: dict[str, str], *args: str) -> Result:
    """fbc in this process (CliRunner), with `env` as the user's environment."""
    return CliRunner().invoke(cli, list(args), env=env, catch_exceptions=False)


def deployed_minimal(moto_server: str, tmp_path: Path) -> dict[str, str]:
    """A clean moto with tiny-dev deployed on ultra (what moto's CloudFormation can create); the environment."""
    environment = clean_moto(moto_server, tmp_path)
    created = invoke(environment, "apply", "-f", str(MINIMAL), "--profile", "ultra", *NETWORK, "--yes")
    assert created.exit_code == 0, created.output
    return environment


def client(env: dict[str, str], service: str, region: str = "eu-west-1") -> Any:
    return boto3.client(service, region_name=region, endpoint_url=env["AWS_ENDPOINT_URL"],
                        aws_access_key_id="testing", aws_secret_access_key="testing")


def test_create_apply_again_change_diff_and_destroy(aws: dict[str, str], tmp_path: Path) -> None:
    spec = ["-f", str(MINIMAL), "--profile", "ultra"]
    created = fbc(aws, "apply", *spec, *NETWORK, "--yes")
    assert created.returncode == 0, created.stderr
    assert "Create tiny-dev: 23 change(s)" in created.stdout  # 21 + the scheduler's EventInvokeConfig + age alarm
    assert "tiny-dev: CREATE_COMPLETE" in created.stdout

    cfn = client(aws, "cloudformation", "eu-west-1")
    stack = cfn.describe_stacks(StackName="tiny-dev")["Stacks"][0]
    assert {t["Key"]: t["Value"] for t in stack["Tags"]}["managed-by"] == "flowbuilder"
    sqs = client(aws, "sqs", "eu-west-1")
    queues = sqs.list_queues()["QueueUrls"]
    names = sorted(q.rsplit("/", 1)[1] for q in queues)
    assert names == ["tiny-dev-jobs", "tiny-dev-jobs-dlq", "tiny-dev-scheduler-dlq"]

    again = fbc(aws, "apply", *spec)
    assert (again.returncode, again.stdout.strip()) == (0, "tiny-dev: no changes")
    # Parameters given again with the values the stack has are no change either (no empty change set run).
    same_values = fbc(aws, "apply", *spec, *NETWORK)
    assert (same_values.returncode, same_values.stdout.strip()) == (0, "tiny-dev: no changes")
    same = fbc(aws, "diff", *spec)
    assert (same.returncode, same.stdout.strip()) == (0, "no differences")

    changed_spec = tmp_path / "flowbuilder.yaml"
    changed_spec.write_text(MINIMAL.read_text("utf-8").replace("timeout: 5m}", "timeout: 5m, memory: 1024}"),
                            "utf-8")
    changed = ["-f", str(changed_spec), "--profile", "ultra"]
    pending = fbc(aws, "diff", *changed)
    assert pending.returncode == 1
    assert "~ WorkerTaskDefinition (AWS::ECS::TaskDefinition)" in pending.stdout
    assert '    Properties.Memory: "512" -> "1024" (replaces)' in pending.stdout
    as_json = json.loads(fbc(aws, "diff", *changed, "--format", "json").stdout)
    assert [r["logicalId"] for r in as_json["resources"]] == ["WorkerTaskDefinition"]

    updated = fbc(aws, "apply", *changed, *NETWORK, "--yes")
    assert updated.returncode == 0, updated.stderr
    assert "Update tiny-dev: 1 change(s)" in updated.stdout and "tiny-dev: UPDATE_COMPLETE" in updated.stdout
    assert fbc(aws, "diff", *changed).returncode == 0

    shown = fbc(aws, "status", "-f", str(changed_spec))
    assert shown.returncode == 0 and shown.stdout.startswith("tiny-dev: UPDATE_COMPLETE")
    refused = fbc(aws, "destroy", "-f", str(changed_spec))
    assert refused.returncode == 1 and "needs confirmation: pass --yes" in refused.stderr
    destroyed = fbc(aws, "destroy", "-f", str(changed_spec), "--yes")
    assert destroyed.returncode == 0 and "tiny-dev: deleted" in destroyed.stdout
    assert "SQS refuses a deleted queue's name for 60 s (QueueDeletedRecently)" in destroyed.stdout
    gone = fbc(aws, "status", "-f", str(changed_spec))
    assert (gone.returncode, gone.stdout.strip()) == (1, "tiny-dev: not deployed")
    assert fbc(aws, "destroy", "-f", str(changed_spec), "--yes").stdout.strip() == (
        "tiny-dev: no such stack; nothing to destroy")


def test_ci_refuses_risky_changes_without_yes_and_leaves_nothing(aws: dict[str, str]) -> None:
    result = fbc(aws, "apply", "-f", str(MINIMAL), "--profile", "ultra", *NETWORK)
    assert result.returncode == 1
    assert "broadens IAM, network or invoke access" in result.stderr
    assert result.stderr.strip().endswith("confirm on a terminal, or pass --yes")
    assert fbc(aws, "status", "-f", str(MINIMAL)).returncode == 1


def test_missing_parameters_are_named() -> None:
    """(fbc apply itself now fills the network from the default VPC: test_default_vpc.py.)"""
    from flowbuilder.compiler.build import compile_spec
    from flowbuilder.compiler.deploy.aws import DeployError
    from flowbuilder.compiler.deploy.parameters import resolve_parameters

    template = json.loads(compile_spec(MINIMAL, "ultra", "dev").built.body)
    with pytest.raises(DeployError, match=r"^parameters to provide: SubnetIds, VpcId \(--param NAME=VALUE\)$"):
        resolve_parameters(template, {}, None)


def test_large_template_goes_through_the_bootstrap_bucket(aws: dict[str, str], tmp_path: Path) -> None:
    spec_file = tmp_path / "flowbuilder.yaml"
    spec_file.write_text(generate(8), "utf-8")  # ultra, 155 resources: over the inline limit
    spec = ["-f", str(spec_file), "--profile", "ultra", "--env", "staging"]
    images = ["--image", "runtime=123456789012.dkr.ecr.us-east-1.amazonaws.com/runtime:2"]
    first = fbc(aws, "apply", *spec, *NETWORK, *images, "--yes")
    assert first.returncode == 1
    assert "over the 51200-byte inline limit" in first.stderr and "run `fbc bootstrap` once" in first.stderr
    boot = fbc(aws, "bootstrap", "-f", str(spec_file))
    assert boot.returncode == 0, boot.stderr
    s3 = client(aws, "s3", "us-east-1")
    bucket = "fbc-assets-123456789012-us-east-1"
    encryption = s3.get_bucket_encryption(Bucket=bucket)
    assert encryption["ServerSideEncryptionConfiguration"]["Rules"][0]["ApplyServerSideEncryptionByDefault"][
        "SSEAlgorithm"] == "AES256"
    assert s3.get_public_access_block(Bucket=bucket)[
        "PublicAccessBlockConfiguration"]["BlockPublicPolicy"] is True

    deployed = fbc(aws, "apply", *spec, *NETWORK, *images, "--yes")
    assert deployed.returncode == 0, deployed.stderr
    assert f"uploaded to s3://{bucket}/big-staging/" in deployed.stdout
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"]]
    assert len(keys) == 1 and keys[0].startswith("big-staging/")
    cfn = client(aws, "cloudformation", "us-east-1")
    params = {p["ParameterKey"]: p["ParameterValue"]
              for p in cfn.describe_stacks(StackName="big-staging")["Stacks"][0]["Parameters"]}
    assert params["RuntimeImage"].endswith("/runtime:2")


def test_image_flag_names_services(aws: dict[str, str]) -> None:
    result = fbc(aws, "apply", "-f", str(REPO / "flowbuilder.yaml"), "--profile", "ultra", "--image", "api=x:1")
    assert result.returncode == 1
    assert "'api' runs the runtime image, shared with the other runtime roles; use --image runtime=URI" in (
        result.stderr)


def test_region_and_credential_problems_are_one_line(aws: dict[str, str]) -> None:
    wrong = fbc({**aws, "AWS_REGION": "eu-west-1"}, "status")
    assert wrong.returncode == 2  # the environment's problem, not the deploy's (README's exit codes)
    assert wrong.stderr.strip() == ("fbc: AWS_REGION is eu-west-1, but the spec deploys to us-east-1: unset "
                                    "AWS_REGION or change spec.region")
    anonymous = {k: v for k, v in aws.items() if k not in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")}
    none = fbc(anonymous, "status", "-f", str(MINIMAL))
    assert none.returncode == 2 and none.stderr.startswith("fbc: no AWS credentials")
    assert "Traceback" not in wrong.stderr + none.stderr


def test_diff_exit_codes(aws: dict[str, str], tmp_path: Path) -> None:
    spec = ["-f", str(MINIMAL), "--profile", "ultra"]
    assert fbc(aws, "diff", *spec).returncode == 1  # nothing deployed: everything is an addition
    invalid = fbc(aws, "diff", "-f", str(REPO / "tests/corpus/cron-both-days.yaml"))
    assert invalid.returncode == 2
    unreachable = fbc({**aws, "AWS_ENDPOINT_URL": f"http://127.0.0.1:{free_port()}",
                       "AWS_MAX_ATTEMPTS": "1"}, "diff", *spec)
    assert unreachable.returncode == 2 and "Traceback" not in unreachable.stderr
    built = tmp_path / "out"
    assert fbc(aws, "build", *spec, "-o", str(built)).returncode == 0
    offline = fbc(aws, "diff", *spec, "--against", str(built / "tiny-dev.template.json"))
    assert (offline.returncode, offline.stdout.strip()) == (0, "no differences")
    missing = fbc(aws, "diff", *spec, "--against", str(tmp_path / "nope.json"))
    assert missing.returncode == 2


def test_destroy_says_what_a_delete_keeps() -> None:
    from build_helpers import template
    from flowbuilder.compiler.deploy.destroy import _kept_after_delete

    kept = _kept_after_delete(template("flow-builder", "standard", "prod"))
    assert "Database (AWS::RDS::DBInstance): a final snapshot" in kept
    assert "LoadBalancerLogsBucket (AWS::S3::Bucket, retained)" in kept
    assert "WorkerLogGroup (AWS::Logs::LogGroup, retained)" in kept
    assert _kept_after_delete(template("flow-builder", "ultra", "dev")) == []  # dev goes whole


def test_destroy_refuses_a_protected_database_before_touching_anything(aws: dict[str, str]) -> None:
    cfn = client(aws, "cloudformation", "eu-west-1")
    template = {"Resources": {
        "Queue": {"Type": "AWS::SQS::Queue", "Properties": {"QueueName": "held-dev-jobs"}},
        "Database": {"Type": "AWS::RDS::DBInstance", "DeletionPolicy": "Snapshot", "Properties": {
            "DBInstanceIdentifier": "held-db", "Engine": "postgres", "DBInstanceClass": "db.t4g.micro",
            "AllocatedStorage": "20", "MasterUsername": "flowbuilder", "MasterUserPassword": "not-a-secret-1",
            "DeletionProtection": True}}}}
    cfn.create_stack(StackName="held-dev", TemplateBody=json.dumps(template))
    rds = client(aws, "rds", "eu-west-1")
    # moto's CloudFormation drops DeletionProtection; the instance gets it as RDS would.
    rds.modify_db_instance(DBInstanceIdentifier="held-db", DeletionProtection=True,
                           ApplyImmediately=True)
    refused = fbc(aws, "destroy", "-f", str(MINIMAL), "--stack-name", "held-dev", "--yes")
    assert refused.returncode == 1
    assert ("held-dev: database held-db has deletion protection, so the delete would stop half-way; turn it off "
            "first (aws rds modify-db-instance --db-instance-identifier held-db --no-deletion-protection") in (
        refused.stderr)
    status = cfn.describe_stacks(StackName="held-dev")["Stacks"][0]["StackStatus"]
    assert status == "CREATE_COMPLETE"  # nothing was deleted
    rds.modify_db_instance(DBInstanceIdentifier="held-db", DeletionProtection=False,
                           ApplyImmediately=True)
    done = fbc(aws, "destroy", "-f", str(MINIMAL), "--stack-name", "held-dev", "--yes")
    assert done.returncode == 0, done.stderr
    assert "  kept: Database (AWS::RDS::DBInstance): a final snapshot" in done.stdout


def test_destroy_stops_the_tasks_a_pipe_started(aws: dict[str, str]) -> None:
    spec = ["-f", str(MINIMAL), "--profile", "ultra"]
    assert fbc(aws, "apply", *spec, *NETWORK, "--yes").returncode == 0
    cfn = client(aws, "cloudformation", "eu-west-1")
    physical = {r["LogicalResourceId"]: r["PhysicalResourceId"]
                for r in cfn.list_stack_resources(StackName="tiny-dev")["StackResourceSummaries"]}
    ecs = client(aws, "ecs", "eu-west-1")
    # Standing in for the Pipe's RunTask: moto cannot run the stack's own task definition (no container memory)
    # nor give a Fargate task its network interface, so the stand-in uses bridge networking.
    family = ecs.register_task_definition(
        family="tiny-dev-worker-stand-in", networkMode="bridge",
        containerDefinitions=[{"name": "worker", "image": "worker", "memory": 512}])
    started = ecs.run_task(
        cluster=physical["Cluster"], taskDefinition=family["taskDefinition"]["taskDefinitionArn"],
        launchType="FARGATE", count=2)
    arns = [t["taskArn"] for t in started["tasks"]]
    assert len(arns) == 2
    done = fbc(aws, "destroy", "-f", str(MINIMAL), "--yes")
    assert done.returncode == 0, done.stderr
    assert "stopping 2 running task(s) in" in done.stdout and "tiny-dev: deleted" in done.stdout
    stopped = ecs.describe_tasks(cluster=physical["Cluster"], tasks=arns)["tasks"]
    assert {t["desiredStatus"] for t in stopped} == {"STOPPED"}


def test_a_deployed_value_the_template_no_longer_allows_must_be_given() -> None:
    from build_helpers import template
    from flowbuilder.compiler.deploy.aws import DeployError, StackInfo
    from flowbuilder.compiler.deploy.parameters import resolve_parameters

    doc = template("flow-builder", "standard", "prod")  # prod: CertificateArn may not be empty any more
    deployed = StackInfo(name="flow-builder-prod", stack_id="id", status="UPDATE_COMPLETE", reason="", outputs={},
                         parameters={"CertificateArn": "", "AlertEmail": "ops@example.com"},
                         termination_protection=True)
    with pytest.raises(DeployError, match=r"^parameters to provide: CertificateArn "):
        resolve_parameters(doc, {}, deployed)
    certificate = "arn:aws:acm:us-east-1:123456789012:certificate/0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0"
    resolved = resolve_parameters(doc, {"CertificateArn": certificate}, deployed)
    assert {"ParameterKey": "AlertEmail", "UsePreviousValue": True} in resolved


def test_environment_names_follow_validates_rule(aws: dict[str, str]) -> None:
    """Issue 14, item 9: one rule for --env everywhere (validate's: a name, as the spec's environments are)."""
    said = "fbc: --env 'Bad_Env' is not a valid environment name (lowercase letters, digits, '-')"
    spec = ["-f", str(MINIMAL), "--env", "Bad_Env"]
    assert fbc(aws, "validate", *spec).stderr.strip() == said
    for verb, extra in (("apply", ["--profile", "ultra", *NETWORK, "--yes"]), ("diff", ["--profile", "ultra"]),
                        ("destroy", ["--yes"]), ("status", [])):
        result = fbc(aws, verb, *spec, *extra)
        assert (result.returncode, result.stderr.strip()) == (2, said), verb
    assert client(aws, "cloudformation").describe_stacks()["Stacks"] == []  # no tiny-Bad_Env


def test_apply_takes_the_union_of_offline_and_change_set_replacements(aws: dict[str, str], tmp_path: Path) -> None:
    """Issue 14, item 10: moto's change set says nothing of replacing the task definition; the offline table
    (createOnlyProperties) does, and CI without --yes must refuse."""
    spec = ["-f", str(MINIMAL), "--profile", "ultra"]
    assert fbc(aws, "apply", *spec, *NETWORK, "--yes").returncode == 0
    changed_spec = tmp_path / "flowbuilder.yaml"
    changed_spec.write_text(MINIMAL.read_text("utf-8").replace("timeout: 5m}", "timeout: 5m, memory: 1024}"),
                            "utf-8")
    changed = ["-f", str(changed_spec), "--profile", "ultra"]
    refused = fbc(aws, "apply", *changed, *NETWORK)
    assert refused.returncode == 1
    assert "  Modify  WorkerTaskDefinition (AWS::ECS::TaskDefinition) [replace]" in refused.stdout
    assert refused.stderr.strip() == ("fbc: this change replaces WorkerTaskDefinition: confirm on a terminal, or "
                                      "pass --yes")
    memory = client(aws, "ecs").describe_task_definition(taskDefinition="tiny-dev-worker")["taskDefinition"]["memory"]
    assert memory == "512"  # not deployed
    assert fbc(aws, "apply", *changed, *NETWORK, "--yes").returncode == 0
