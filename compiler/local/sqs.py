"""An SQS endpoint on 127.0.0.1: moto's server in a thread, with the spec's queues, dead-letter queues and
redrive policies. The runtime talks to it with boto3 exactly as on AWS (AWS_ENDPOINT_URL)."""

from __future__ import annotations

import json
import logging
from typing import Any

import boto3

from ..plan import QueuePlan

CREDENTIALS = {"AWS_ACCESS_KEY_ID": "local", "AWS_SECRET_ACCESS_KEY": "local"}  # moto accepts any


class LocalSqs:
    def __init__(self, region: str) -> None:
        self.region = region
        self.endpoint = ""
        self._server: Any = None
        self.sqs: Any = None

    def start(self) -> str:
        from moto.server import ThreadedMotoServer  # imported here: only `fbc up` needs moto

        logging.getLogger("werkzeug").setLevel(logging.WARNING)  # one line per request otherwise
        self._server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        self._server.start()
        host, port = self._server.get_host_and_port()
        self.endpoint = f"http://{host}:{port}"
        self.sqs = self.client()  # clients are thread-safe; creating one costs tens of milliseconds
        return self.endpoint

    def client(self) -> Any:
        return boto3.client("sqs", endpoint_url=self.endpoint, region_name=self.region,
                            aws_access_key_id=CREDENTIALS["AWS_ACCESS_KEY_ID"],
                            aws_secret_access_key=CREDENTIALS["AWS_SECRET_ACCESS_KEY"])

    def create(self, queue: QueuePlan) -> str:
        """The queue and its dead-letter queue, with the attributes the template gives them; its URL."""
        sqs = self.sqs
        fifo = {"FifoQueue": "true"} if queue.fifo else {}
        dead = sqs.create_queue(QueueName=queue.dead_letter_physical_name, Attributes={
            **fifo, "MessageRetentionPeriod": str(queue.dead_letter_retention)})["QueueUrl"]
        dead_arn = sqs.get_queue_attributes(QueueUrl=dead, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        attributes = {
            **fifo,
            "VisibilityTimeout": str(queue.visibility_timeout),
            "MessageRetentionPeriod": str(queue.retention),
            "DelaySeconds": str(queue.delay),
            "ReceiveMessageWaitTimeSeconds": str(queue.receive_wait_time),
            "MaximumMessageSize": str(queue.max_message_size),
            "RedrivePolicy": json.dumps({"deadLetterTargetArn": dead_arn, "maxReceiveCount": queue.max_receive_count}),
        }
        if queue.fifo and queue.content_based_deduplication:
            attributes["ContentBasedDeduplication"] = "true"
        return str(sqs.create_queue(QueueName=queue.physical_name, Attributes=attributes)["QueueUrl"])

    def depth(self, url: str) -> tuple[int, int]:
        """(visible, in flight): what the scaling alarms read."""
        found = self.sqs.get_queue_attributes(QueueUrl=url, AttributeNames=[
            "ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"])["Attributes"]
        return int(found["ApproximateNumberOfMessages"]), int(found["ApproximateNumberOfMessagesNotVisible"])

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop()
            self._server = None
