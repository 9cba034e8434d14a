"""fbc run's deploy/run.py against botocore's Stubber: moto's server cannot invoke a Lambda function without
Docker, so the scheduler function's answers (and EventBridge Scheduler's GetSchedule) are recorded ones. The
event is the deployed schedule's, marked as a manual run (scheduledTime manual:<uuid>, unique per run, so the
runtime never takes it for a scheduled firing); --wait invokes synchronously and shows the execution or the
error."""

from __future__ import annotations

import base64
import io
import json
from typing import Any

import boto3
import pytest
from botocore.response import StreamingBody
from botocore.stub import ANY, Stubber

from build_helpers import REPO
from flowbuilder.compiler.build import compile_spec
from flowbuilder.compiler.deploy import run
from flowbuilder.compiler.deploy.aws import Aws, Clock
from flowbuilder.compiler.deploy.status import Deployed

FUNCTION = "flow-builder-dev-SchedulerFunction-AP9C5L3PID47"
SCHEDULE = "flow-builder-dev-NightlyReportSchedule-1X2Y3Z"


class Sessions:
    """A session handing out one stubbed client per service."""

    def __init__(self, clients: dict[str, Any]) -> None:
        self.clients = clients

    def client(self, service: str, config: Any = None) -> Any:
        return self.clients[service]


def stubbed(service: str) -> Any:
    return boto3.client(service, region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")


@pytest.fixture
def target() -> tuple[Any, Deployed]:
    compiled = compile_spec(REPO / "flowbuilder.yaml", "standard", "dev")
    return compiled.plan, Deployed("flow-builder-dev", compiled.manifest,
                                   {"SchedulerFunction": FUNCTION, "NightlyReportSchedule": SCHEDULE})


def body(value: Any) -> StreamingBody:
    raw = json.dumps(value).encode()
    return StreamingBody(io.BytesIO(raw), len(raw))


def test_the_event_is_the_deployed_schedules_marked_manual(target: tuple[Any, Deployed]) -> None:
    plan, found = target
    planned = run.chosen(plan, "nightly-report")
    deployed_event = {**planned.event(), "input": {"days": 7}}  # deployed before the spec changed
    scheduler = stubbed("scheduler")
    notes: list[str] = []
    with Stubber(scheduler) as stub:
        for _ in range(2):
            stub.add_response("get_schedule", {"Name": SCHEDULE, "Target": {
                "Arn": "arn:aws:lambda:us-east-1:123456789012:function:" + FUNCTION,
                "RoleArn": "arn:aws:iam::123456789012:role/r", "Input": json.dumps(deployed_event)}},
                {"Name": SCHEDULE})
        aws = Aws(Sessions({"scheduler": scheduler}))
        first, second = (run.event(aws, found, planned, notes.append) for _ in range(2))
    assert first["scheduledTime"].startswith("manual:") and first["scheduledTime"] != second["scheduledTime"]
    assert {**first, "scheduledTime": "<aws.scheduler.scheduled-time>"} == {**deployed_event, "manual": True}
    assert notes[0] == ("nightly-report: the deployed schedule's event differs from this build's; firing the "
                        "deployed one")


def test_an_unreadable_schedule_fires_the_builds_event(target: tuple[Any, Deployed]) -> None:
    plan, found = target
    scheduler = stubbed("scheduler")
    notes: list[str] = []
    with Stubber(scheduler) as stub:
        stub.add_client_error("get_schedule", "AccessDeniedException", "no")
        sent = run.event(Aws(Sessions({"scheduler": scheduler})), found, run.chosen(plan, "nightly-report"),
                         notes.append)
    assert sent["input"] == {"days": 1} and sent["manual"] is True
    assert notes == ["nightly-report: the deployed schedule could not be read (AccessDeniedException); firing this "
                     "build's event"]
    with pytest.raises(ValueError, match=r"'nightly' is not a schedule of the spec in dev \(its schedules: "
                                         r"nightly-report\)"):
        run.chosen(plan, "nightly")


def test_wait_shows_the_execution_or_the_functions_error(target: tuple[Any, Deployed]) -> None:
    _, found = target
    payload = {"type": "schedule", "schedule": "nightly-report", "scheduledTime": "manual:1", "manual": True}
    lam = stubbed("lambda")
    with Stubber(lam) as stub:
        expected = {"FunctionName": FUNCTION, "InvocationType": "RequestResponse", "LogType": "Tail", "Payload": ANY}
        stub.add_response("invoke", {"StatusCode": 200, "Payload": body({"execution": "e-1", "created": True}),
                                     "ResponseMetadata": {"RequestId": "r-1"}}, expected)
        stub.add_response("invoke", {"StatusCode": 200, "FunctionError": "Unhandled", "Payload": body(
            {"errorType": "LookupError", "errorMessage": "no workflow named 'nightly-report'"}),
            "LogResult": base64.b64encode(b"START\n[ERROR] LookupError\nEND").decode()}, expected)
        aws = Aws(Sessions({"lambda": lam}), Clock(sleep=lambda _: None))
        done = run.fire(aws, found, payload, wait=True)
        failed = run.fire(aws, found, payload, wait=True)
    assert (done.execution, done.created, done.error, done.request_id) == ("e-1", True, None, "r-1")
    assert failed.error == "LookupError: no workflow named 'nightly-report'"
    assert failed.log_tail == ("START", "[ERROR] LookupError", "END")


def test_without_wait_it_is_invoked_as_the_schedule_invokes_it(target: tuple[Any, Deployed]) -> None:
    _, found = target
    payload = {"type": "schedule", "schedule": "nightly-report", "scheduledTime": "manual:2", "manual": True}
    lam = stubbed("lambda")
    with Stubber(lam) as stub:
        stub.add_response("invoke", {"StatusCode": 202, "ResponseMetadata": {"RequestId": "r-2"}}, {
            "FunctionName": FUNCTION, "InvocationType": "Event", "Payload": json.dumps(payload).encode()})
        outcome = run.fire(Aws(Sessions({"lambda": lam})), found, payload, wait=False)
    assert (outcome.mark, outcome.request_id, outcome.execution) == ("manual:2", "r-2", None)
    gone = Deployed(found.stack, found.manifest, {})
    with pytest.raises(Exception, match="the scheduler function is not in flow-builder-dev"):
        run.fire(Aws(Sessions({})), gone, payload, wait=False)
