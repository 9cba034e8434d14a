"""Issue 14, item 6: two applies at once. Whichever run loses finds another run's change set or stack in the
way of its own, at any of its steps, and says so in one line (exit 1) instead of AWS's error. botocore's
Stubber plays the other run: each test answers one of this run's calls as CloudFormation does once the other
run got there first."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from build_helpers import SPECS
from flowbuilder.compiler.build import compile_spec
from flowbuilder.compiler.deploy import operations
from flowbuilder.compiler.deploy.aws import Aws, Clock, DeployError
from flowbuilder.compiler.deploy.operations import Target

STACK_ID = "arn:aws:cloudformation:eu-west-1:123456789012:stack/tiny-dev/1f2e3d4c-0000-1111-2222-333344445555"
T0 = datetime(2026, 11, 28, 12, 0, 0, tzinfo=UTC)
NETWORK = {"VpcId": "vpc-1", "SubnetIds": "subnet-1,subnet-2"}
RACED = r"^another apply is deploying tiny-dev; fbc status follows it$"


class _Session:
    def __init__(self, client: Any) -> None:
        self._client = client

    def client(self, service: str, config: Any = None) -> Any:
        return self._client


@pytest.fixture
def cfn() -> Any:
    return boto3.client("cloudformation", region_name="eu-west-1", aws_access_key_id="x", aws_secret_access_key="x")


def apply(cfn: Any) -> int:
    target = Target(compile_spec(SPECS["minimal"], "ultra", "dev"), "tiny-dev")
    return operations.apply(Aws(_Session(cfn), Clock(sleep=lambda _: None)), target, given=NETWORK, assume_yes=True,
                            interactive=False, bucket=None, say=lambda _: None, confirm=lambda _: False)


def deployed(stubber: Stubber, status: str = "UPDATE_COMPLETE") -> None:
    """A stack as the other run found it too, with a template that differs from this run's."""
    stubber.add_response("describe_stacks", {"Stacks": [{
        "StackName": "tiny-dev", "StackId": STACK_ID, "StackStatus": status, "CreationTime": T0,
        "Parameters": [{"ParameterKey": k, "ParameterValue": v} for k, v in NETWORK.items()]}]})
    stubber.add_response("get_template", {"TemplateBody": '{"Resources": {}}'})


def none(stubber: Stubber) -> None:
    stubber.add_client_error("describe_stacks", service_error_code="ValidationError",
                             service_message="Stack with id tiny-dev does not exist", http_status_code=400)


def created(stubber: Stubber) -> None:
    stubber.add_response("create_change_set", {"Id": "arn:cs", "StackId": STACK_ID})


def computed(stubber: Stubber) -> None:
    stubber.add_response("describe_change_set", {"Status": "CREATE_COMPLETE", "ExecutionStatus": "AVAILABLE",
                                                 "Changes": []})
    stubber.add_response("describe_stack_events", {"StackEvents": []})


def test_the_other_run_executed_first_and_ours_was_deleted(cfn: Any) -> None:
    with Stubber(cfn) as stubber:
        deployed(stubber)
        created(stubber)
        stubber.add_client_error("describe_change_set", service_error_code="ChangeSetNotFound",
                                 service_message="ChangeSet [fbc-1] does not exist", http_status_code=404)
        with pytest.raises(DeployError, match=RACED):
            apply(cfn)
        stubber.assert_no_pending_responses()


def test_the_other_runs_update_made_ours_obsolete(cfn: Any) -> None:
    with Stubber(cfn) as stubber:
        deployed(stubber)
        created(stubber)
        computed(stubber)
        stubber.add_client_error("execute_change_set", service_error_code="InvalidChangeSetStatus",
                                 service_message="ChangeSet [arn:cs] cannot be executed in its current execution "
                                                 "status of [OBSOLETE]", http_status_code=400)
        with pytest.raises(DeployError, match=RACED):
            apply(cfn)
        stubber.assert_no_pending_responses()


def test_the_other_runs_update_started_between_our_look_and_our_change_set(cfn: Any) -> None:
    with Stubber(cfn) as stubber:
        deployed(stubber)
        stubber.add_client_error("create_change_set", service_error_code="ValidationError",
                                 service_message=f"Stack:{STACK_ID} is in UPDATE_IN_PROGRESS state and can not be "
                                                 f"updated.", http_status_code=400)
        with pytest.raises(DeployError, match=RACED):
            apply(cfn)
        stubber.assert_no_pending_responses()


def test_the_other_run_created_the_stack_first(cfn: Any) -> None:
    with Stubber(cfn) as stubber:
        none(stubber)
        stubber.add_client_error("create_change_set", service_error_code="AlreadyExistsException",
                                 service_message="Stack [tiny-dev] already exists", http_status_code=400)
        with pytest.raises(DeployError, match=RACED):
            apply(cfn)
        stubber.assert_no_pending_responses()


def test_the_other_run_deleted_the_empty_stack_ours_was_on(cfn: Any) -> None:
    with Stubber(cfn) as stubber:
        none(stubber)
        created(stubber)
        stubber.add_client_error("describe_change_set", service_error_code="ValidationError",
                                 service_message=f"Stack with id {STACK_ID} does not exist", http_status_code=400)
        with pytest.raises(DeployError, match=RACED):
            apply(cfn)
        stubber.assert_no_pending_responses()


def test_other_errors_are_not_races(cfn: Any) -> None:
    from botocore.exceptions import ClientError

    with Stubber(cfn) as stubber:
        deployed(stubber)
        stubber.add_client_error("create_change_set", service_error_code="InsufficientCapabilitiesException",
                                 service_message="Requires capabilities : [CAPABILITY_AUTO_EXPAND]")
        with pytest.raises(ClientError, match="CAPABILITY_AUTO_EXPAND"):
            apply(cfn)
        stubber.assert_no_pending_responses()
