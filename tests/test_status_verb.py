"""fbc status's operator section against moto's server over HTTP: queue depth, the oldest message's age (its
CloudWatch metric), dead letters (SQS attributes), tasks a Pipe started (ECS ListTasks), the scheduler's last
errors (CloudWatch Logs) and alarm states (DescribeAlarms). moto's CloudFormation skips alarms, so the alarm
test creates them and gives their names as their physical IDs."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import boto3
import pytest
from test_deploy import MINIMAL, clean_moto, client, deployed_minimal, invoke

from flowbuilder.compiler.build import compile_spec
from flowbuilder.compiler.deploy.aws import Aws
from flowbuilder.compiler.deploy.status import Deployed, deployed, operating

SPEC = ["-f", str(MINIMAL)]


@pytest.fixture
def env(moto_server: str, tmp_path: Path) -> dict[str, str]:
    return deployed_minimal(moto_server, tmp_path)


fbc = invoke


def physical(env: dict[str, str]) -> dict[str, str]:
    return {r["LogicalResourceId"]: r["PhysicalResourceId"] for r in client(env, "cloudformation")
            .list_stack_resources(StackName="tiny-dev")["StackResourceSummaries"]}


def test_status_shows_queues_tasks_and_scheduler_errors(env: dict[str, str]) -> None:
    ids = physical(env)
    sqs = client(env, "sqs")
    for n in range(3):
        sqs.send_message(QueueUrl=ids["JobsQueue"], MessageBody=f"e-{n}")
    sqs.send_message(QueueUrl=ids["JobsDeadLetterQueue"], MessageBody="e-dead")
    client(env, "cloudwatch").put_metric_data(Namespace="AWS/SQS", MetricData=[{
        "MetricName": "ApproximateAgeOfOldestMessage", "Dimensions": [{"Name": "QueueName", "Value": "tiny-dev-jobs"}],
        "Timestamp": datetime.now(UTC) - timedelta(minutes=1), "Value": 250.0}])
    ecs = client(env, "ecs")
    # Standing in for the Pipe's RunTask (moto cannot run the stack's own task definition): the same family.
    family = ids["WorkerTaskDefinition"].rsplit("/", 1)[-1].split(":")[0]
    stand_in = ecs.register_task_definition(family=family, networkMode="bridge",
                                            containerDefinitions=[{"name": "worker", "image": "w", "memory": 512}])
    ecs.run_task(cluster=ids["Cluster"], taskDefinition=stand_in["taskDefinition"]["taskDefinitionArn"],
                 launchType="FARGATE", count=2)
    logs = client(env, "logs")
    logs.create_log_stream(logGroupName=ids["SchedulerLogGroup"], logStreamName="s/1")
    now = int(time.time() * 1000)
    logs.put_log_events(logGroupName=ids["SchedulerLogGroup"], logStreamName="s/1", logEvents=[
        {"timestamp": now - 2000, "message": "INFO flowbuilder.scheduler {\"event\": \"sweep\", \"swept\": 0}"},
        {"timestamp": now - 1000, "message": "[ERROR] LookupError: schedule nightly: no workflow named 'x'"}])

    shown = fbc(env, "status", *SPEC)
    assert shown.exit_code == 0, shown.output
    lines = shown.stdout.splitlines()
    operator = lines[lines.index("queues:"):]
    assert operator[:-2] == [
        "queues:",
        "  jobs: 3 waiting (oldest 4m 10s), 0 in flight, dead letters 1",
        "    alarms: JobsAgeAlarm not created, JobsDeadLetterAlarm not created",
        "services:",
        "  worker: 2 task(s) running (started by its Pipe)",
        "scheduler:",
        "  dead letters: 0",
        "  last errors (1 in 1h 00m):"]
    assert operator[-2].endswith(" [ERROR] LookupError: schedule nightly: no workflow named 'x'")
    assert operator[-1] == "    alarms: SchedulerDeadLetterAlarm not created"


def test_alarm_states_are_shown_by_what_they_watch(env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    cloudwatch = client(env, "cloudwatch")
    for name in ("tiny-dev-jobs-age", "tiny-dev-jobs-dead-letters"):
        cloudwatch.put_metric_alarm(AlarmName=name, Namespace="AWS/SQS", MetricName="NumberOfMessagesSent",
                                    Statistic="Sum", Period=60, EvaluationPeriods=1, Threshold=1,
                                    ComparisonOperator="GreaterThanThreshold")
    cloudwatch.set_alarm_state(AlarmName="tiny-dev-jobs-dead-letters", StateValue="ALARM", StateReason="test")
    monkeypatch.setenv("AWS_ENDPOINT_URL", env["AWS_ENDPOINT_URL"])
    aws = Aws(boto3.Session(region_name="eu-west-1", aws_access_key_id="testing", aws_secret_access_key="testing"))
    found = deployed(aws, "tiny-dev", compile_spec(MINIMAL, "ultra", "dev").manifest)
    with_alarms = Deployed(found.stack, found.manifest, {**found.physical, "JobsAgeAlarm": "tiny-dev-jobs-age",
                                                          "JobsDeadLetterAlarm": "tiny-dev-jobs-dead-letters",
                                                          "SchedulerDeadLetterAlarm": "tiny-dev-gone"})
    lines: list[str] = []
    operating(aws, with_alarms, lines.append)
    assert "    alarms: JobsAgeAlarm OK, JobsDeadLetterAlarm ALARM" in lines  # moto starts an alarm OK
    assert lines[-1] == "    alarms: SchedulerDeadLetterAlarm not found"


def test_status_of_a_stack_not_deployed_builds_nothing(moto_server: str, tmp_path: Path) -> None:
    shown = fbc(clean_moto(moto_server, tmp_path), "status", *SPEC, "--profile", "no-such-profile")
    assert (shown.exit_code, shown.stdout) == (1, "tiny-dev: not deployed\n")
