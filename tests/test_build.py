"""Structural tests of compiled templates: each component the issue names, by profile and environment."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from build_helpers import SPECS, compiled, resources, template
from conftest import REPO, run_fbc, run_fbc_process
from flowbuilder.compiler import contract
from flowbuilder.compiler.build import compile_spec

# --- ultra ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("env", ["dev", "prod"])
def test_ultra_runs_one_spot_task_per_message_through_a_pipe(env: str) -> None:
    doc = template("flow-builder", "ultra", env)
    (pipe,) = resources(doc, "AWS::Pipes::Pipe").values()
    props = pipe["Properties"]
    assert props["SourceParameters"]["SqsQueueParameters"]["BatchSize"] == 1
    ecs = props["TargetParameters"]["EcsTaskParameters"]
    assert ecs["CapacityProviderStrategy"] == [{"CapacityProvider": "FARGATE_SPOT", "Weight": 1}]
    assert "LaunchType" not in ecs
    assert ecs["NetworkConfiguration"]["AwsvpcConfiguration"]["AssignPublicIp"] == "ENABLED"
    assert ecs["Overrides"]["ContainerOverrides"] == [{"Name": "worker", "Environment": [
        {"Name": contract.EXECUTION_ID, "Value": "$.body"}]}]
    assert props["Source"] == {"Fn::GetAtt": ["WorkflowRequestsQueue", "Arn"]}


def test_ultra_pipe_role_is_exactly_what_the_pipe_needs() -> None:
    doc = template("flow-builder", "ultra", "prod")
    statements = doc["Resources"]["WorkerPipeRole"]["Properties"]["Policies"][0]["PolicyDocument"]["Statement"]
    assert [(s["Sid"], s["Action"]) for s in statements] == [
        ("ReadQueue", ["sqs:DeleteMessage", "sqs:GetQueueAttributes", "sqs:ReceiveMessage"]),
        ("RunTask", ["ecs:RunTask"]),
        ("PassTaskRoles", ["iam:PassRole"]),
    ]
    assert statements[1]["Resource"] == [{"Fn::Sub": "arn:${AWS::Partition}:ecs:${AWS::Region}:${AWS::AccountId}:"
                                                      "task-definition/flow-builder-prod-worker:*"}]
    assert statements[2]["Resource"] == [{"Fn::GetAtt": ["WorkerExecutionRole", "Arn"]},
                                         {"Fn::GetAtt": ["WorkerTaskRole", "Arn"]}]


@pytest.mark.parametrize("spec", list(SPECS))
def test_ultra_has_no_idle_infrastructure(spec: str) -> None:
    doc = template(spec, "ultra", "prod")
    kinds = {r["Type"] for r in doc["Resources"].values()}
    forbidden = {"AWS::EC2::NatGateway", "AWS::EC2::Instance", "AWS::RDS::DBInstance", "AWS::EC2::VPC",
                 "AWS::ElasticLoadBalancingV2::LoadBalancer", "AWS::ECS::Service", "AWS::KMS::Key",
                 "AWS::CloudWatch::Dashboard", "AWS::EC2::EIP"}
    assert kinds & forbidden == set()
    alarms = resources(doc, "AWS::CloudWatch::Alarm")
    assert len(alarms) <= 10  # CloudWatch's always-free allowance
    # Dead letters, and per Pipe-fed queue the age of its oldest message (the one sign that nothing consumes).
    assert all(name.endswith(("DeadLetterAlarm", "AgeAlarm")) for name in alarms)
    assert set(doc["Parameters"]) >= {"VpcId", "SubnetIds", "DatabaseUrlParameter", "DatabaseUrlSecretArn"}


def test_ultra_serves_web_services_from_function_urls() -> None:
    doc = template("flow-builder", "ultra", "prod")
    api = doc["Resources"]["ApiFunction"]["Properties"]
    assert api["PackageType"] == "Image"
    assert api["ImageConfig"] == {"EntryPoint": contract.LAMBDA_ENTRYPOINT,
                                  "Command": [contract.LAMBDA_HANDLERS["api"]]}
    frontend = doc["Resources"]["FrontendFunction"]["Properties"]
    assert "ImageConfig" not in frontend  # its own image, with the Lambda Web Adapter
    assert frontend["Environment"]["Variables"]["AWS_LWA_PORT"] == "3000"
    urls = resources(doc, "AWS::Lambda::Url")
    assert {u["Properties"]["AuthType"] for u in urls.values()} == {"NONE"}
    permissions = sorted((p["Properties"]["Action"], p["Properties"].get("InvokedViaFunctionUrl", False))
                         for p in resources(doc, "AWS::Lambda::Permission").values())
    assert permissions == [("lambda:InvokeFunction", True)] * 2 + [("lambda:InvokeFunctionUrl", False)] * 2
    assert doc["Outputs"]["ApiUrl"]["Value"] == {  # one origin for frontend and API: CloudFront (cdn.py)
        "Fn::Join": ["", ["https://", {"Fn::GetAtt": ["Distribution", "DomainName"]}, "/api"]]}


def test_ultra_database_url_is_a_reference_never_a_value() -> None:
    doc = template("flow-builder", "ultra", "prod")
    container = doc["Resources"]["WorkerTaskDefinition"]["Properties"]["ContainerDefinitions"][0]
    (secret,) = [s for s in container["Secrets"] if s["Name"] == contract.DATABASE_URL]
    assert secret["ValueFrom"]["Fn::If"][0] == "DatabaseUrlInSecretsManager"
    env = doc["Resources"]["SchedulerFunction"]["Properties"]["Environment"]["Variables"]
    assert env[contract.DATABASE_URL_SOURCE] == {"Fn::If": ["DatabaseUrlInSecretsManager", "secretsmanager", "ssm"]}


def test_ultra_cluster_offers_spot() -> None:
    doc = template("minimal", "ultra", "dev")
    providers = doc["Resources"]["ClusterCapacityProviders"]["Properties"]
    assert providers["CapacityProviders"] == ["FARGATE", "FARGATE_SPOT"]
    assert providers["DefaultCapacityProviderStrategy"] == [{"CapacityProvider": "FARGATE_SPOT", "Weight": 1}]
    task = doc["Resources"]["WorkerTaskDefinition"]["Properties"]
    assert (task["Cpu"], task["Memory"]) == ("256", "512")


# --- standard -------------------------------------------------------------------------------------------------


def test_standard_prod_database_is_highly_available_and_safe() -> None:
    db = template("flow-builder", "standard", "prod")["Resources"]["Database"]
    props = db["Properties"]
    assert props["MultiAZ"] is True and props["EnablePerformanceInsights"] is True
    assert props["DeletionProtection"] is True and props["StorageEncrypted"] is True
    assert props["PubliclyAccessible"] is False and props["ManageMasterUserPassword"] is True
    assert "MasterUserPassword" not in props
    assert (db["DeletionPolicy"], db["UpdateReplacePolicy"]) == ("Snapshot", "Snapshot")
    assert props["DBInstanceClass"] == "db.m7g.large"


def test_standard_dev_database_is_small() -> None:
    props = template("flow-builder", "standard", "dev")["Resources"]["Database"]["Properties"]
    assert props["MultiAZ"] is False and "EnablePerformanceInsights" not in props
    assert props["DBInstanceClass"] == "db.t4g.micro"


@pytest.mark.parametrize(("env", "gateways", "instance"), [("prod", 2, False), ("staging", 1, False),
                                                           ("dev", 0, True)])
def test_standard_nat_by_environment(env: str, gateways: int, instance: bool) -> None:
    doc = template("flow-builder", "standard", env)
    assert len(resources(doc, "AWS::EC2::NatGateway")) == gateways
    assert bool(resources(doc, "AWS::EC2::Instance")) is instance
    subnets = {name.rstrip("0123456789") for name in resources(doc, "AWS::EC2::Subnet")}
    assert subnets == {"PublicSubnet", "PrivateSubnet", "DatabaseSubnet"}
    if instance:
        launch = doc["Resources"]["NatInstanceLaunchTemplate"]["Properties"]["LaunchTemplateData"]
        assert launch["MetadataOptions"]["HttpTokens"] == "required"
        assert launch["BlockDeviceMappings"][0]["Ebs"]["Encrypted"] is True
        nat = doc["Resources"]["NatInstance"]["Properties"]
        assert nat["SourceDestCheck"] is False and nat["SubnetId"] == {"Ref": "PublicSubnet1"}
        assert launch["ImageId"].startswith("resolve:ssm:/aws/service/ami-amazon-linux-latest/al2023-ami")
        routes = [r["Properties"] for r in resources(doc, "AWS::EC2::Route").values()
                  if "InstanceId" in r["Properties"]]
        assert len(routes) == 2 and all(r["InstanceId"] == {"Ref": "NatInstance"} for r in routes)


def test_worker_scales_to_zero_on_its_queue() -> None:
    doc = template("flow-builder", "standard", "prod")
    res = doc["Resources"]
    not_empty, empty = res["WorkerQueueNotEmptyAlarm"]["Properties"], res["WorkerQueueEmptyAlarm"]["Properties"]
    assert not_empty["MetricName"] == "ApproximateNumberOfMessagesVisible"
    assert (not_empty["ComparisonOperator"], not_empty["Threshold"]) == ("GreaterThanThreshold", 0)
    assert not_empty["TreatMissingData"] == "notBreaching"
    assert not_empty["AlarmActions"] == [{"Ref": "WorkerScaleOutPolicy"}]
    assert (empty["EvaluationPeriods"], empty["DatapointsToAlarm"]) == (5, 5)
    assert empty["TreatMissingData"] == "breaching"
    assert empty["Metrics"][-1]["Expression"] == "visible + inflight"
    assert empty["AlarmActions"] == [{"Ref": "WorkerScaleInPolicy"}]
    out = res["WorkerScaleOutPolicy"]["Properties"]["StepScalingPolicyConfiguration"]
    into = res["WorkerScaleInPolicy"]["Properties"]["StepScalingPolicyConfiguration"]
    assert out["AdjustmentType"] == into["AdjustmentType"] == "ExactCapacity"
    assert out["StepAdjustments"][0] == {"MetricIntervalLowerBound": 0, "MetricIntervalUpperBound": 40,
                                         "ScalingAdjustment": 1}
    assert out["StepAdjustments"][-1]["ScalingAdjustment"] == 10  # the spec's max
    assert "MetricIntervalUpperBound" not in out["StepAdjustments"][-1]
    assert into["StepAdjustments"] == [{"MetricIntervalUpperBound": 0, "ScalingAdjustment": 0}]
    target = res["WorkerScalableTarget"]["Properties"]
    assert (target["MinCapacity"], target["MaxCapacity"]) == (0, 10)
    for metric in ("CPU", "Memory"):
        tracking = res[f"Worker{metric}ScalingPolicy"]["Properties"]["TargetTrackingScalingPolicyConfiguration"]
        assert tracking["DisableScaleIn"] is True
    assert "DesiredCount" not in res["WorkerService"]["Properties"]  # the scalable target owns the count


def test_security_groups_chain_load_balancer_to_services_to_database() -> None:
    res = template("flow-builder", "standard", "prod")["Resources"]
    ingress = {k: v["Properties"] for k, v in res.items() if v["Type"] == "AWS::EC2::SecurityGroupIngress"}
    assert {k: (v["GroupId"], v["SourceSecurityGroupId"]) for k, v in ingress.items()} == {
        "ApiIngressFromLoadBalancer": ({"Ref": "TaskSecurityGroup"}, {"Ref": "LoadBalancerSecurityGroup"}),
        "FrontendIngressFromLoadBalancer": ({"Ref": "TaskSecurityGroup"}, {"Ref": "LoadBalancerSecurityGroup"}),
        "DatabaseIngressFromClients": ({"Ref": "DatabaseSecurityGroup"}, {"Ref": "DatabaseClientSecurityGroup"}),
    }
    assert "SecurityGroupIngress" not in res["TaskSecurityGroup"]["Properties"]
    assert "SecurityGroupIngress" not in res["DatabaseSecurityGroup"]["Properties"]
    lb = res["LoadBalancerSecurityGroup"]["Properties"]["SecurityGroupIngress"]
    assert sorted(rule["FromPort"] for rule in lb) == [80, 443]
    worker_groups = res["WorkerService"]["Properties"]["NetworkConfiguration"]["AwsvpcConfiguration"]
    assert worker_groups["SecurityGroups"] == [{"Ref": "TaskSecurityGroup"}, {"Ref": "DatabaseClientSecurityGroup"}]
    assert worker_groups["AssignPublicIp"] == "DISABLED"
    frontend_groups = res["FrontendService"]["Properties"]["NetworkConfiguration"]["AwsvpcConfiguration"]
    assert frontend_groups["SecurityGroups"] == [{"Ref": "TaskSecurityGroup"}]  # not a runtime role: no database


def test_load_balancer_routes_paths_and_redirects_http_with_a_certificate() -> None:
    dev = template("flow-builder", "standard", "dev")["Resources"]  # HTTP unless a certificate is given
    http = dev["HttpListener"]["Properties"]["DefaultActions"]["Fn::If"]
    assert http[0] == "HasCertificate"
    assert http[1][0]["Type"] == "redirect" and http[2][0]["TargetGroupArn"] == {"Ref": "FrontendTargetGroup"}
    assert dev["HttpsListener"]["Condition"] == "HasCertificate"
    res = template("flow-builder", "standard", "prod")["Resources"]  # prod: HTTPS only, port 80 redirects
    assert [a["Type"] for a in res["HttpListener"]["Properties"]["DefaultActions"]] == ["redirect"]
    assert "Condition" not in res["HttpsListener"]
    rule = res["ApiListenerRule"]["Properties"]
    assert rule["Conditions"][0]["PathPatternConfig"]["Values"] == ["/api", "/api/*"]
    assert res["ApiTargetGroup"]["Properties"]["HealthCheckPath"] == "/api/healthz"
    assert set(res["ApiService"]["DependsOn"]) == {"LoadBalancerListenersReady", "HttpListener", "ApiListenerRule",
                                                   "ClusterCapacityProviders"}


def test_services_get_secrets_by_reference_and_logs_with_retention() -> None:
    res = template("full", "standard", "prod")["Resources"]
    api = res["ApiTaskDefinition"]["Properties"]["ContainerDefinitions"][0]
    secrets = {s["Name"]: s["ValueFrom"] for s in api["Secrets"]}
    partner = "arn:aws:secretsmanager:us-west-2:123456789012:secret:acme/partner-XyZ123"
    assert secrets["PARTNER_TOKEN"] == f"{partner}:token::"
    env = {e["Name"]: e["Value"] for e in api["Environment"]}
    # The password rotates: the task gets the secret's ARN and reads it per connection, never the value.
    master = {"Fn::GetAtt": ["Database", "MasterUserSecret.SecretArn"]}
    assert env[contract.DB_SECRET_ARN] == master and not any("DB_PASSWORD" in name for name in secrets)
    task_role = res["ApiTaskRole"]["Properties"]["Policies"][0]["PolicyDocument"]["Statement"]
    assert {"Sid": "ReadDatabaseCredentials", "Effect": "Allow", "Action": ["secretsmanager:GetSecretValue"],
            "Resource": [master]} in task_role
    assert env[contract.ROLE] == "api" and env[contract.BASE_PATH] == "/api"
    assert api["Command"] == contract.COMMANDS["api"]
    assert api["LogConfiguration"]["LogDriver"] == "awslogs"
    assert res["ApiLogGroup"]["Properties"]["RetentionInDays"] == 90
    read = res["ApiExecutionRole"]["Properties"]["Policies"][0]["PolicyDocument"]["Statement"]
    allowed = [r for s in read if s["Action"] == ["secretsmanager:GetSecretValue"] for r in s["Resource"]]
    assert "arn:aws:secretsmanager:us-west-2:123456789012:secret:acme/partner-XyZ123" in allowed
    admin = res["AdminTaskDefinition"]["Properties"]["ContainerDefinitions"][0]
    assert admin["Secrets"] == [{"Name": "ADMIN_PASSWORD", "ValueFrom": {
        "Fn::Sub": "arn:${AWS::Partition}:ssm:${AWS::Region}:${AWS::AccountId}:parameter/acme/admin-password"}}]
    assert "AdminTargetGroup" not in res  # a private web service gets no load balancer
    order_sync = res["OrderSyncTaskDefinition"]["Properties"]["ContainerDefinitions"][0]
    assert order_sync["StopTimeout"] == 110 and order_sync["Command"] == ["python", "-m", "order_sync"]


def test_image_parameters_are_pinned_to_their_repository() -> None:
    params = template("full", "standard", "prod")["Parameters"]
    pattern = params["AdminImage"]["AllowedPattern"]
    assert pattern.startswith("^123456789012\\.dkr\\.ecr\\.us\\-west\\-2\\.amazonaws\\.com/acme/admin(")
    assert params["RuntimeImage"]["Default"].endswith("@sha256:" + "0f1e2d3c4b5a69788796a5b4c3d2e1f0" * 2)


def test_fifo_queue_and_its_dead_letter_queue() -> None:
    res = template("full", "ultra", "prod")["Resources"]
    orders, dlq = res["OrdersQueue"]["Properties"], res["OrdersDeadLetterQueue"]["Properties"]
    assert orders["FifoQueue"] is True and orders["ContentBasedDeduplication"] is True
    assert orders["QueueName"] == "acme-flows-prod-orders.fifo"
    assert dlq["FifoQueue"] is True and dlq["QueueName"] == "acme-flows-prod-orders-dlq.fifo"
    assert orders["RedrivePolicy"] == {"deadLetterTargetArn": {"Fn::GetAtt": ["OrdersDeadLetterQueue", "Arn"]},
                                       "maxReceiveCount": 5}


# --- both -----------------------------------------------------------------------------------------------------


def test_scheduler_schedules_each_spec_schedule_and_sweeps() -> None:
    res = template("full", "ultra", "prod")["Resources"]
    nightly = res["NightlyExportSchedule"]["Properties"]
    assert nightly["ScheduleExpression"] == "cron(30 1 ? * MON-FRI *)"
    assert nightly["ScheduleExpressionTimezone"] == "America/Los_Angeles"
    assert nightly["Target"]["RetryPolicy"] == {"MaximumRetryAttempts": 5, "MaximumEventAgeInSeconds": 7200}
    assert nightly["Target"]["DeadLetterConfig"] == {"Arn": {"Fn::GetAtt": ["SchedulerDeadLetterQueue", "Arn"]}}
    assert json.loads(nightly["Target"]["Input"]) == {
        "type": "schedule", "schedule": "nightly-export", "workflow": "export", "input": {"days": 1, "format": "csv"},
        "scheduledTime": "<aws.scheduler.scheduled-time>"}
    assert res["HeartbeatSchedule"]["Properties"]["FlexibleTimeWindow"] == {"Mode": "FLEXIBLE",
                                                                           "MaximumWindowInMinutes": 2}
    assert res["MonthEndSchedule"]["Properties"]["State"] == "DISABLED"
    assert json.loads(res["SweeperSchedule"]["Properties"]["Target"]["Input"]) == {"type": "sweep"}
    invoke = res["SchedulerRole"]["Properties"]["Policies"][0]["PolicyDocument"]["Statement"][0]
    assert invoke["Resource"] == [{"Fn::GetAtt": ["SchedulerFunction", "Arn"]}]
    function = res["SchedulerFunction"]["Properties"]
    assert function["ImageConfig"]["Command"] == [contract.LAMBDA_HANDLERS["scheduler"]]
    assert "VpcConfig" not in function  # ultra: the external database is on the internet


def test_standard_scheduler_joins_the_vpc_to_reach_the_database() -> None:
    function = template("flow-builder", "standard", "prod")["Resources"]["SchedulerFunction"]["Properties"]
    assert {"Ref": "DatabaseClientSecurityGroup"} in function["VpcConfig"]["SecurityGroupIds"]


def test_output_is_deterministic_across_processes() -> None:
    code = ("import sys\nfrom flowbuilder.compiler.build import compile_spec\n"
            "sys.stdout.write(compile_spec(sys.argv[1], 'standard', 'prod').built.body)")
    bodies = {subprocess.run([sys.executable, "-c", code, str(SPECS["full"])], capture_output=True, text=True,
                             check=True, env={**os.environ, "PYTHONHASHSEED": seed}).stdout
              for seed in ("1", "2", "3")}
    assert len(bodies) == 1
    assert bodies == {compiled("full", "standard", "prod").built.body}


def test_renaming_a_service_touches_only_its_resources(tmp_path: Path) -> None:
    original = SPECS["full"].read_text("utf-8")
    renamed = tmp_path / "flowbuilder.yaml"
    renamed.write_text(original.replace("    admin:\n", "    backoffice:\n"), "utf-8")
    before = template("full", "standard", "prod")["Resources"]
    after = json.loads(compile_spec(renamed, "standard", "prod").built.body)["Resources"]
    changed = {k for k in before.keys() | after.keys() if before.get(k) != after.get(k)}
    assert changed, "the rename changed nothing"
    # The dashboard lists every service, so its body changes (an in-place update, never a replacement).
    assert {k for k in changed if not k.startswith(("Admin", "Backoffice"))} == {"Dashboard"}
    assert {k for k in changed if k.startswith("Admin")} == {k.replace("Backoffice", "Admin", 1)
                                                             for k in changed if k.startswith("Backoffice")}


def test_secret_values_never_reach_a_template(tmp_path: Path) -> None:
    """The compiler only ever handles references: values in the environment, in the parameter defaults or in
    secret-looking places are refused or ignored, and appear nowhere in its output."""
    sentinel = "s3cr3t-SENTINEL-Value-42"
    env = {**os.environ, "FLOWBUILDER_DATABASE_URL": f"postgres://u:{sentinel}@db/x", "API_KEYS": sentinel,
           "AWS_SECRET_ACCESS_KEY": sentinel, "DB_PASSWORD": sentinel}
    spec = tmp_path / "flowbuilder.yaml"
    spec.write_text(SPECS["full"].read_text("utf-8"), "utf-8")
    out = tmp_path / "out"
    for profile in ("standard", "ultra"):
        proc = run_fbc_process("build", "-f", str(spec), "--profile", profile, "--env", "prod", "-o", str(out),
                               env=env)
        assert proc.returncode == 0, proc.stderr
        assert sentinel not in proc.stdout + proc.stderr
    for file in out.iterdir():
        assert sentinel not in file.read_text("utf-8")
    # A value where a reference belongs is refused at validation, before anything is written.
    spec.write_text(SPECS["full"].read_text("utf-8").replace("ADMIN_PASSWORD: /acme/admin-password",
                                                             f"ADMIN_PASSWORD: {sentinel}"), "utf-8")
    result = run_fbc("build", "-f", str(spec), "-o", str(tmp_path / "refused"))
    assert result.exit_code == 1
    assert "never the secret's value" in result.stdout
    assert not (tmp_path / "refused").exists()


def test_the_compiled_app_runs_the_contracts_entry_points() -> None:
    res = template("flow-builder", "standard", "prod")["Resources"]
    worker = res["WorkerTaskDefinition"]["Properties"]["ContainerDefinitions"][0]
    env = {e["Name"]: e["Value"] for e in worker["Environment"]}
    assert env[contract.WORKER_MODE] == "poll" and env[contract.QUEUE_URL] == {"Ref": "WorkflowRequestsQueue"}
    assert env[contract.WORKER_TIMEOUT] == "600" and env[contract.WORKER_CONCURRENCY] == "4"
    ultra = template("flow-builder", "ultra", "prod")["Resources"]["WorkerTaskDefinition"]
    env = {e["Name"]: e["Value"] for e in ultra["Properties"]["ContainerDefinitions"][0]["Environment"]}
    assert env[contract.WORKER_MODE] == "once"


def test_outputs_name_what_users_need() -> None:
    outputs = template("flow-builder", "standard", "prod")["Outputs"]
    assert {"ApiUrl", "LoadBalancerUrl", "WorkflowRequestsQueueUrl", "DashboardUrl", "AlertTopicArn"} <= set(outputs)


def test_golden_files_are_current() -> None:
    golden = REPO / "tests" / "golden"
    files = sorted(golden.glob("*.json"))
    assert len(files) == 12
    for file in files:
        spec, profile, env = file.stem.rsplit("-", 2)
        assert compiled(spec, profile, env).built.body == file.read_text("utf-8"), (
            f"{file.name} differs: review the change, then run python tests/golden/regenerate.py")
