"""Issue 14, item 3: destroy's guard follows the stack (its environment tag, its termination protection), not
--env; termination protection goes off only with --disable-termination-protection. moto for the guard (moto
cannot turn protection off: UpdateTerminationProtection is not implemented), botocore's Stubber for the
delete that turns it off."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber
from test_deploy import MINIMAL, clean_moto, client, fbc

from flowbuilder.compiler.deploy.aws import Aws, Clock
from flowbuilder.compiler.deploy.destroy import destroy

QUEUE = json.dumps({"Resources": {"Queue": {"Type": "AWS::SQS::Queue"}}})


@pytest.fixture
def aws(moto_server: str, tmp_path: Path) -> dict[str, str]:
    return clean_moto(moto_server, tmp_path)


def stack_status(aws: dict[str, str], name: str) -> str:
    return str(client(aws, "cloudformation").describe_stacks(StackName=name)["Stacks"][0]["StackStatus"])


def test_a_prod_stack_named_with_another_env_still_asks_for_its_name(aws: dict[str, str]) -> None:
    client(aws, "cloudformation").create_stack(StackName="tiny-prod", TemplateBody=QUEUE,
                                               Tags=[{"Key": "environment", "Value": "prod"}])
    side_door = fbc(aws, "destroy", "-f", str(MINIMAL), "--stack-name", "tiny-prod", "--yes")  # --env: dev
    assert (side_door.returncode, side_door.stderr.strip()) == (
        1, "fbc: tiny-prod is a prod stack (its environment tag): type its name to delete it (--confirm-stack NAME "
           "with --yes in CI)")
    assert stack_status(aws, "tiny-prod") == "CREATE_COMPLETE"
    typed = fbc(aws, "destroy", "-f", str(MINIMAL), "--stack-name", "tiny-prod", "--yes", "--confirm-stack",
                "tiny-prod")
    assert typed.returncode == 0 and "tiny-prod: deleted" in typed.stdout


def test_termination_protection_is_never_turned_off_unasked(aws: dict[str, str]) -> None:
    client(aws, "cloudformation").create_stack(StackName="tiny-dev", TemplateBody=QUEUE,
                                               EnableTerminationProtection=True,
                                               Tags=[{"Key": "environment", "Value": "dev"}])
    refused = fbc(aws, "destroy", "-f", str(MINIMAL), "--yes", "--confirm-stack", "tiny-dev")
    assert (refused.returncode, refused.stderr.strip()) == (
        1, "fbc: tiny-dev has termination protection on; destroy turns it off only when asked: "
           "--disable-termination-protection")
    # Asked to turn it off, a protected stack is guarded as prod is: its name, typed.
    untyped = fbc(aws, "destroy", "-f", str(MINIMAL), "--yes", "--disable-termination-protection")
    assert (untyped.returncode, untyped.stderr.strip()) == (
        1, "fbc: tiny-dev has termination protection on: type its name to delete it (--confirm-stack NAME with "
           "--yes in CI)")
    assert stack_status(aws, "tiny-dev") == "CREATE_COMPLETE"


STACK_ID = "arn:aws:cloudformation:eu-west-1:123456789012:stack/tiny-prod/1f2e3d4c-0000-1111-2222-333344445555"


class _Session:
    def __init__(self, client: Any) -> None:
        self._client = client

    def client(self, service: str, config: Any = None) -> Any:
        return self._client


def test_turning_protection_off_is_said_and_comes_after_every_check() -> None:
    from datetime import UTC, datetime

    cfn = boto3.client("cloudformation", region_name="eu-west-1", aws_access_key_id="x", aws_secret_access_key="x")
    t0 = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
    described = {"Stacks": [{"StackName": "tiny-prod", "StackId": STACK_ID, "StackStatus": "UPDATE_COMPLETE",
                             "CreationTime": t0, "EnableTerminationProtection": True,
                             "Tags": [{"Key": "environment", "Value": "prod"}]}]}
    event = {"StackEvents": [{"StackId": STACK_ID, "EventId": "e1", "StackName": "tiny-prod", "Timestamp": t0,
                              "LogicalResourceId": "tiny-prod", "ResourceType": "AWS::CloudFormation::Stack",
                              "ResourceStatus": "UPDATE_COMPLETE"}]}
    lines: list[str] = []
    with Stubber(cfn) as stubber:
        stubber.add_response("describe_stacks", described, {"StackName": "tiny-prod"})
        stubber.add_response("describe_stacks", described, {"StackName": STACK_ID})  # its tags
        stubber.add_response("get_template", {"TemplateBody": QUEUE}, {"StackName": STACK_ID,
                                                                        "TemplateStage": "Original"})
        stubber.add_response("list_stack_resources", {"StackResourceSummaries": []}, {"StackName": STACK_ID})
        stubber.add_response("update_termination_protection", {"StackId": STACK_ID},
                             {"StackName": STACK_ID, "EnableTerminationProtection": False})
        stubber.add_response("describe_stack_events", event)
        stubber.add_response("delete_stack", {}, {"StackName": STACK_ID})
        stubber.add_response("list_stack_resources", {"StackResourceSummaries": []}, {"StackName": STACK_ID})
        stubber.add_response("describe_stack_events", event)
        stubber.add_response("describe_stacks", {"Stacks": [{**described["Stacks"][0],
                                                              "StackStatus": "DELETE_COMPLETE"}]})
        code = destroy(Aws(_Session(cfn), Clock(sleep=lambda _: None)), "tiny-prod", prod=False, assume_yes=True,
                       typed_name="tiny-prod", disable_protection=True, interactive=False, say=lines.append,
                       confirm=lambda _: False, prompt=lambda _: "")
        stubber.assert_no_pending_responses()
    assert code == 0
    assert lines[:2] == ["tiny-prod: termination protection off (--disable-termination-protection)",
                         "tiny-prod: deleted"]
