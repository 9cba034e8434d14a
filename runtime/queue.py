"""The executions queue: SQS through boto3 (AWS_ENDPOINT_URL points it at a local endpoint).

The client is made on first use, and boto3 imported then: a Lambda answering /healthz, a sweep with nothing to
send or a once-mode task whose execution finishes never pay for them (boto3's import and a client's creation,
which reads botocore's endpoint and service models, are about 0.1 s each)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

MAX_CONNECTIONS = 64  # kept-alive HTTP connections to SQS per process


@dataclass(frozen=True)
class Message:
    body: str
    receipt: str
    receive_count: int


class Queue:
    def __init__(self, url: str, client: Any = None) -> None:
        self.url = url
        self._sqs = client

    @property
    def sqs(self) -> Any:
        if self._sqs is None:  # boto3's clients are thread-safe; two threads racing here make two, one is kept
            import boto3
            from botocore.config import Config

            # One client per process, shared by every thread that sends: the API's thread pool (40) and a poll
            # worker's slots. botocore keeps 10 connections by default; past them each concurrent call opened a
            # connection and discarded it (urllib3's "Connection pool is full", 159 times in 20 s at 100 req/s).
            self._sqs = boto3.client("sqs", config=Config(max_pool_connections=MAX_CONNECTIONS))
        return self._sqs

    def send(self, execution_id: str) -> None:
        self.sqs.send_message(QueueUrl=self.url, MessageBody=execution_id)

    def receive(self, limit: int, wait: int = 20, visibility: int | None = None) -> list[Message]:
        kwargs: dict[str, Any] = {"QueueUrl": self.url, "MaxNumberOfMessages": max(1, min(limit, 10)),
                                  "WaitTimeSeconds": wait, "MessageSystemAttributeNames": ["ApproximateReceiveCount"]}
        if visibility is not None:
            kwargs["VisibilityTimeout"] = visibility
        found = self.sqs.receive_message(**kwargs).get("Messages", [])
        return [Message(m["Body"], m["ReceiptHandle"], int(m.get("Attributes", {}).get("ApproximateReceiveCount", 1)))
                for m in found]

    def delete(self, message: Message) -> None:
        self.sqs.delete_message(QueueUrl=self.url, ReceiptHandle=message.receipt)

    def extend(self, message: Message, seconds: int) -> None:
        self.sqs.change_message_visibility(QueueUrl=self.url, ReceiptHandle=message.receipt,
                                           VisibilityTimeout=seconds)

    def reachable(self) -> bool:
        self.sqs.get_queue_attributes(QueueUrl=self.url, AttributeNames=["QueueArn"])
        return True
