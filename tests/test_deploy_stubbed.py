"""What moto cannot produce, against recorded real-shaped CloudFormation responses (botocore's Stubber):
a failed resource and its rollback, a busy stack, a stack left in ROLLBACK_COMPLETE, prod's termination
protection and stack outputs, and what an interrupted run cleans up and says. (Throttling is botocore's to
retry: test_deploy_timeouts.py, over HTTP, where its retries happen.)"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from botocore.stub import ANY, Stubber

from build_helpers import SPECS
from flowbuilder.compiler.build import compile_spec
from flowbuilder.compiler.deploy import aws, operations, status
from flowbuilder.compiler.deploy.aws import Aws, Clock, DeployError
from flowbuilder.compiler.deploy.operations import Target

STACK_ID = "arn:aws:cloudformation:eu-west-1:123456789012:stack/tiny-dev/1f2e3d4c-0000-1111-2222-333344445555"
T0 = datetime(2026, 11, 28, 12, 0, 0, tzinfo=UTC)


class FakeSession:
    def __init__(self, client: Any) -> None:
        self._client = client

    def client(self, service: str, config: Any = None) -> Any:
        return self._client


def stubbed(client: Any, waits: list[float] | None = None) -> Aws:
    """AWS answering from a stubbed client, on a clock that only notes how long each wait would be."""
    return Aws(FakeSession(client), Clock(poll_seconds=5, sleep=(waits if waits is not None else []).append))


@pytest.fixture
def cfn() -> Any:
    return boto3.client("cloudformation", region_name="eu-west-1", aws_access_key_id="x",
                        aws_secret_access_key="x")


def target(env: str = "dev") -> Target:
    return Target(compile_spec(SPECS["minimal"], "ultra", env), f"tiny-{env}")


def stack(status: str, reason: str = "", outputs: list[dict[str, str]] | None = None,
          protection: bool = False, name: str = "tiny-dev") -> dict[str, Any]:
    item: dict[str, Any] = {"StackName": name, "StackId": STACK_ID, "StackStatus": status,
                            "CreationTime": T0, "EnableTerminationProtection": protection,
                            "Parameters": [{"ParameterKey": "VpcId", "ParameterValue": "vpc-1"},
                                           {"ParameterKey": "SubnetIds", "ParameterValue": "subnet-1,subnet-2"}]}
    if reason:
        item["StackStatusReason"] = reason
    if outputs:
        item["Outputs"] = outputs
    return {"Stacks": [item]}


def event(n: int, logical: str, kind: str, status: str, reason: str = "") -> dict[str, Any]:
    item = {"StackId": STACK_ID, "EventId": f"e{n}", "StackName": "tiny-dev", "LogicalResourceId": logical,
            "ResourceType": kind, "ResourceStatus": status, "Timestamp": T0 + timedelta(seconds=n)}
    if reason:
        item["ResourceStatusReason"] = reason
    return item


def events(*items: dict[str, Any]) -> dict[str, Any]:
    return {"StackEvents": sorted(items, key=lambda e: e["Timestamp"], reverse=True)}


def not_found(stubber: Stubber) -> None:
    stubber.add_client_error("describe_stacks", service_error_code="ValidationError",
                             service_message="Stack with id tiny-dev does not exist", http_status_code=400)


def change_set_created(stubber: Stubber, changes: list[dict[str, Any]]) -> None:
    stubber.add_response("create_change_set", {"Id": "arn:cs", "StackId": STACK_ID})
    stubber.add_response("describe_change_set", {
        "Status": "CREATE_COMPLETE", "ExecutionStatus": "AVAILABLE",
        "Changes": [{"Type": "Resource", "ResourceChange": c} for c in changes]})


ADD_QUEUE = {"Action": "Add", "LogicalResourceId": "JobsQueue", "ResourceType": "AWS::SQS::Queue"}
STACK = "AWS::CloudFormation::Stack"
NETWORK = {"VpcId": "vpc-1", "SubnetIds": "subnet-1,subnet-2"}


def run_apply(cfn: Any, tgt: Target, given: dict[str, str] | None = None, **kwargs: Any) -> tuple[int, list[str]]:
    lines: list[str] = []
    options = {"assume_yes": True, "interactive": False, "bucket": None, "confirm": lambda q: False, **kwargs}
    code = operations.apply(stubbed(cfn), tgt, given=NETWORK if given is None else given,
                            say=lines.append, **options)
    return code, lines


def test_failed_resource_is_reported_with_its_reason_and_the_rollback(cfn: Any) -> None:
    with Stubber(cfn) as stubber:
        not_found(stubber)
        change_set_created(stubber, [ADD_QUEUE])
        stubber.add_response("describe_stack_events", events(event(0, "tiny-dev", STACK, "REVIEW_IN_PROGRESS")))
        stubber.add_response("execute_change_set", {})
        history = [
            event(0, "tiny-dev", STACK, "REVIEW_IN_PROGRESS"),
            event(1, "tiny-dev", STACK, "CREATE_IN_PROGRESS"),
            event(2, "JobsQueue", "AWS::SQS::Queue", "CREATE_IN_PROGRESS"),
            event(3, "JobsQueue", "AWS::SQS::Queue", "CREATE_FAILED",
                  "Resource handler returned message: \"Value 20 for parameter ReceiveMessageWaitTimeSeconds is "
                  "invalid.\" (RequestToken: 1a2b, HandlerErrorCode: InvalidRequest)"),
            event(4, "tiny-dev", STACK, "ROLLBACK_IN_PROGRESS", "The following resource(s) failed to create: "
                                                                "[JobsQueue]. Rollback requested by user."),
            event(5, "JobsQueue", "AWS::SQS::Queue", "DELETE_COMPLETE"),
            event(6, "tiny-dev", STACK, "ROLLBACK_COMPLETE"),
        ]
        stubber.add_response("describe_stack_events", events(*history))
        stubber.add_response("describe_stacks", stack("ROLLBACK_COMPLETE", "The following resource(s) failed to "
                                                                          "create: [JobsQueue]."))
        stubber.add_response("describe_stack_events", events(*history))
        code, lines = run_apply(cfn, target())
        stubber.assert_no_pending_responses()
    assert code == 1
    assert "tiny-dev: ROLLBACK_COMPLETE (The following resource(s) failed to create: [JobsQueue].)" in lines
    assert any(line.startswith("  failed: JobsQueue (AWS::SQS::Queue): Resource handler returned message: "
                               "\"Value 20 for parameter ReceiveMessageWaitTimeSeconds") for line in lines)
    assert lines[-1] == "rolled back: nothing of this stack remains; the next apply recreates it"
    progress = [line for line in lines if line.startswith("[")]
    assert progress[0].startswith("[  0/1] 12:00:01 CREATE_IN_PROGRESS")
    assert any(line.startswith("[  1/1] 12:00:05 DELETE_COMPLETE") for line in progress)


def test_busy_stack_is_refused(cfn: Any) -> None:
    with Stubber(cfn) as stubber:
        stubber.add_response("describe_stacks", stack("UPDATE_IN_PROGRESS"))
        with pytest.raises(DeployError, match=r"tiny-dev is busy \(UPDATE_IN_PROGRESS\); wait for it to finish"):
            run_apply(cfn, target())


def test_rollback_complete_stack_is_deleted_before_creating_again(cfn: Any) -> None:
    with Stubber(cfn) as stubber:
        stubber.add_response("describe_stacks", stack("ROLLBACK_COMPLETE"))
        stubber.add_response("describe_stack_events", events(event(1, "tiny-dev", STACK, "ROLLBACK_COMPLETE")))
        stubber.add_response("delete_stack", {}, {"StackName": STACK_ID})
        stubber.add_response("describe_stack_events", events(event(2, "tiny-dev", STACK, "DELETE_COMPLETE")))
        stubber.add_response("describe_stacks", stack("DELETE_COMPLETE"))
        stubber.add_client_error("create_change_set", service_error_code="InsufficientCapabilitiesException",
                                 service_message="stop here")
        with pytest.raises(Exception, match="stop here"):
            run_apply(cfn, target())
        stubber.assert_no_pending_responses()


def test_prod_turns_on_termination_protection_and_prints_outputs(cfn: Any) -> None:
    tgt = target("prod")
    with Stubber(cfn) as stubber:
        not_found(stubber)
        change_set_created(stubber, [ADD_QUEUE])
        stubber.add_response("describe_stack_events", events(event(0, "tiny-prod", STACK, "REVIEW_IN_PROGRESS")))
        stubber.add_response("execute_change_set", {})
        stubber.add_response("describe_stack_events", events(event(1, "JobsQueue", "AWS::SQS::Queue",
                                                                   "CREATE_COMPLETE")))
        stubber.add_response("describe_stacks", stack("CREATE_COMPLETE", name="tiny-prod", outputs=[
            {"OutputKey": "JobsQueueUrl", "OutputValue": "https://sqs.eu-west-1.amazonaws.com/123/tiny-prod-jobs"}]))
        stubber.add_response("update_termination_protection", {"StackId": STACK_ID},
                             {"StackName": STACK_ID, "EnableTerminationProtection": True})
        code, lines = run_apply(cfn, tgt)
        stubber.assert_no_pending_responses()
    assert code == 0
    assert lines[-3:] == ["tiny-prod: termination protection on (prod)", "tiny-prod: CREATE_COMPLETE",
                          "  JobsQueueUrl = https://sqs.eu-west-1.amazonaws.com/123/tiny-prod-jobs"]


def test_risky_change_asks_on_a_terminal_and_can_be_declined(cfn: Any) -> None:
    asked: list[str] = []

    def decline(question: str) -> bool:
        asked.append(question)
        return False

    with Stubber(cfn) as stubber:
        not_found(stubber)
        change_set_created(stubber, [ADD_QUEUE])
        stubber.add_response("delete_change_set", {}, {"StackName": STACK_ID, "ChangeSetName": ANY})
        stubber.add_response("list_change_sets", {"Summaries": []}, {"StackName": STACK_ID})
        stubber.add_response("delete_stack", {}, {"StackName": STACK_ID})
        code, lines = run_apply(cfn, target(), assume_yes=False, interactive=True, confirm=decline)
        stubber.assert_no_pending_responses()
    assert (code, asked, lines[-1]) == (1, ["Deploy these changes?"], "not deployed")


def test_a_declined_first_change_set_leaves_the_empty_stack_to_another_runs_change_set(cfn: Any) -> None:
    """Issue 14 item 6: another run created its change set on the empty stack meanwhile; deleting the stack by
    ID would take that change set along, so the stack is left (that run deletes or executes it)."""
    with Stubber(cfn) as stubber:
        not_found(stubber)
        change_set_created(stubber, [ADD_QUEUE])
        stubber.add_response("delete_change_set", {}, {"StackName": STACK_ID, "ChangeSetName": ANY})
        stubber.add_response("list_change_sets", {"Summaries": [
            {"StackId": STACK_ID, "ChangeSetName": "fbc-20261128120001-abcdef"}]}, {"StackName": STACK_ID})
        code, lines = run_apply(cfn, target(), assume_yes=False, interactive=True, confirm=lambda q: False)
        stubber.assert_no_pending_responses()  # no delete_stack
    assert code == 1
    assert lines[-2:] == ["left the empty stack: another run's change set is waiting on it "
                          "(fbc-20261128120001-abcdef)", "not deployed"]


def test_status_of_a_stack_with_only_a_change_set_waiting_is_not_deployed(cfn: Any) -> None:
    lines: list[str] = []
    with Stubber(cfn) as stubber:
        stubber.add_response("describe_stacks", stack("REVIEW_IN_PROGRESS"))
        stubber.add_response("list_change_sets", {"Summaries": [
            {"StackId": STACK_ID, "ChangeSetName": "fbc-20261128120001-abcdef"}]}, {"StackName": STACK_ID})
        code = status.status(stubbed(cfn), "tiny-dev", drift=False, events=10, say=lines.append)
        stubber.assert_no_pending_responses()
    assert (code, lines) == (1, ["tiny-dev: not deployed (a change set is waiting: fbc-20261128120001-abcdef)"])


def test_status_reports_drift(cfn: Any) -> None:
    with Stubber(cfn) as stubber:
        stubber.add_response("describe_stacks", stack("UPDATE_COMPLETE", protection=True))
        stubber.add_response("describe_stack_events", events(event(1, "tiny-dev", STACK, "UPDATE_COMPLETE")))
        stubber.add_response("detect_stack_drift", {"StackDriftDetectionId": "d-1"}, {"StackName": "tiny-dev"})
        stubber.add_response("describe_stack_drift_detection_status", {
            "StackId": STACK_ID, "StackDriftDetectionId": "d-1", "DetectionStatus": "DETECTION_IN_PROGRESS",
            "Timestamp": T0})
        stubber.add_response("describe_stack_drift_detection_status", {
            "StackId": STACK_ID, "StackDriftDetectionId": "d-1", "DetectionStatus": "DETECTION_COMPLETE",
            "StackDriftStatus": "DRIFTED", "Timestamp": T0})
        stubber.add_response("describe_stack_resource_drifts", {"StackResourceDrifts": [
            {"StackId": STACK_ID, "LogicalResourceId": "JobsQueue", "ResourceType": "AWS::SQS::Queue",
             "StackResourceDriftStatus": "MODIFIED", "Timestamp": T0},
            {"StackId": STACK_ID, "LogicalResourceId": "Cluster", "ResourceType": "AWS::ECS::Cluster",
             "StackResourceDriftStatus": "IN_SYNC", "Timestamp": T0}]})
        lines: list[str] = []
        waits: list[float] = []
        code = status.status(stubbed(cfn, waits), "tiny-dev", drift=True, events=5, say=lines.append)
        stubber.assert_no_pending_responses()
    assert code == 0 and waits == [5]  # one poll while the detection ran
    assert lines[1] == "  termination protection: on"
    assert lines[-2:] == ["drift: DRIFTED, 1 resource(s)", "  MODIFIED  JobsQueue (AWS::SQS::Queue)"]


def test_follow_gives_up_at_its_deadline_by_the_clock_it_was_given(cfn: Any) -> None:
    times = iter([0.0, 7201.0])  # when following starts, then after the first look
    aws = Aws(FakeSession(cfn), Clock(monotonic=lambda: next(times), sleep=lambda _: None))
    with Stubber(cfn) as stubber:
        stubber.add_response("describe_stack_events", events(event(1, "tiny-dev", STACK, "UPDATE_IN_PROGRESS")))
        stubber.add_response("describe_stacks", stack("UPDATE_IN_PROGRESS"))
        with pytest.raises(DeployError, match=r"^tiny-dev is still UPDATE_IN_PROGRESS after 7200s; follow it with fbc"):
            operations.follow(aws, "tiny-dev", T0, 1, say=lambda _: None)
        stubber.assert_no_pending_responses()


def test_pages_follow_the_services_token_and_stop_when_the_reader_does() -> None:
    calls: list[dict[str, Any]] = []

    def list_tasks(**kwargs: Any) -> dict[str, Any]:  # ECS's spelling: nextToken
        calls.append(kwargs)
        n = int(kwargs.get("nextToken", 0))
        return {"taskArns": [f"task-{n}"], **({"nextToken": str(n + 1)} if n < 2 else {})}

    aws = Aws(FakeSession(None))
    assert [arn for page in aws.pages(list_tasks, token="nextToken", cluster="c") for arn in page["taskArns"]] == [
        "task-0", "task-1", "task-2"]
    assert calls == [{"cluster": "c"}, {"cluster": "c", "nextToken": "1"}, {"cluster": "c", "nextToken": "2"}]
    calls.clear()
    next(aws.pages(list_tasks, token="nextToken", cluster="c"))
    assert len(calls) == 1  # a page is fetched only when it is read


def test_an_interrupted_run_deletes_the_change_set_it_did_not_execute_and_says_what_is_left(cfn: Any) -> None:
    cf = stubbed(cfn).cloudformation
    with Stubber(cfn) as stubber:
        stubber.add_response("create_change_set", {"Id": "arn:cs", "StackId": STACK_ID})
        stubber.add_response("create_change_set", {"Id": "arn:cs2", "StackId": STACK_ID})
        stubber.add_response("delete_change_set", {}, {"StackName": STACK_ID, "ChangeSetName": "fbc-2"})
        stubber.add_response("delete_change_set", {}, {"StackName": STACK_ID, "ChangeSetName": "fbc-1"})
        stubber.add_client_error("delete_change_set", service_error_code="AccessDenied", service_message="no",
                                 expected_params={"StackName": "tiny-dev", "ChangeSetName": "fbc-3"})
        stubber.add_response("describe_stacks", stack("UPDATE_ROLLBACK_IN_PROGRESS"))
        for name in ("fbc-1", "fbc-2"):
            cf.create_change_set("tiny-dev", name, kind="UPDATE", parameters=[], capabilities=[], tags=[],
                                 description="d", template={"TemplateBody": "{}"})
        cf.delete_change_set(STACK_ID, "fbc-2")  # apply's own clean-up: forgotten
        cf.unexecuted.append(aws.Unexecuted("tiny-dev", "fbc-3", creates=False))  # interrupted while created
        assert cf.abandon() == [
            "deleted change set fbc-1 (not executed)",
            "change set fbc-3 of tiny-dev is left (AccessDenied: delete it with aws cloudformation "
            "delete-change-set --stack-name tiny-dev --change-set-name fbc-3)"]
        assert cf.left() == ["CloudFormation is still rolling back tiny-dev (UPDATE_ROLLBACK_IN_PROGRESS); fbc "
                             "status follows it"]
        stubber.assert_no_pending_responses()
    assert cf.unexecuted == []


def test_an_interrupted_first_change_set_takes_its_empty_stack_along(cfn: Any) -> None:
    cf = stubbed(cfn).cloudformation
    with Stubber(cfn) as stubber:
        stubber.add_response("create_change_set", {"Id": "arn:cs", "StackId": STACK_ID})
        stubber.add_response("delete_change_set", {}, {"StackName": STACK_ID, "ChangeSetName": "fbc-1"})
        stubber.add_response("describe_stacks", stack("REVIEW_IN_PROGRESS"))
        stubber.add_response("delete_stack", {}, {"StackName": STACK_ID})
        not_found(stubber)
        cf.create_change_set("tiny-dev", "fbc-1", kind="CREATE", parameters=[], capabilities=[], tags=[],
                             description="d", template={"TemplateBody": "{}"})
        assert cf.abandon() == ["deleted change set fbc-1 (not executed) and the empty stack tiny-dev it created"]
        assert cf.left() == []  # nothing of this run is left
        stubber.assert_no_pending_responses()
