"""The API's use of database connections under concurrency (issue 17): a request holds at most one pooled
connection at a time and none while it sends to SQS, so concurrent POSTs cannot deadlock on the pool (they did:
a `yield` dependency's session kept its connection while executions.create waited for a second one, and its
teardown waited for a pool thread, until the pool's 30 s timeout)."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor, wait
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import event

from flowbuilder.runtime.api.app import create_app
from flowbuilder.runtime.config import Settings
from flowbuilder.runtime.db.session import engine
from flowbuilder.runtime.queue import Queue

from .conftest import two_steps

KEY = "test-key-123"
AUTH = {"Authorization": f"Bearer {KEY}"}


class SlowQueue(Queue):
    """SQS that answers after `delay` seconds, noting how many connections the pool had lent out meanwhile."""

    def __init__(self, url: str, delay: float) -> None:
        super().__init__("local", client=object())
        self.database_url, self.delay = url, delay
        self.sent: list[str] = []
        self.lent_while_sending: list[int] = []
        self.lock = threading.Lock()

    def send(self, execution_id: str) -> None:
        lent = engine(self.database_url, "").pool.checkedout()  # type: ignore[attr-defined]
        time.sleep(self.delay)
        with self.lock:
            self.sent.append(execution_id)
            self.lent_while_sending.append(lent)


def _client(database_url: str, queue: Queue) -> TestClient:
    return TestClient(create_app(Settings(database_url=database_url, api_keys=(KEY,)), queue))


def test_a_post_holds_one_connection_at_a_time_and_none_while_sending(database_url: str) -> None:
    queue = SlowQueue(database_url, 0)
    with _client(database_url, queue) as client:
        workflow = client.post("/workflows", json={"name": "w", "definition": two_steps("http://example.com")},
                               headers=AUTH).json()
        pool = engine(database_url, "").pool  # the key create_app caches it under
        lent, most = [0], [0]

        def out(*_: Any) -> None:
            lent[0] += 1
            most[0] = max(most[0], lent[0])

        def back(*_: Any) -> None:
            lent[0] -= 1

        event.listen(pool, "checkout", out)
        event.listen(pool, "checkin", back)
        try:
            started = client.post(f"/workflows/{workflow['id']}/executions", json={"input": {}}, headers=AUTH)
        finally:
            event.remove(pool, "checkout", out)
            event.remove(pool, "checkin", back)
    assert started.status_code == 202
    assert queue.sent == [started.json()["id"]]
    assert (most[0], queue.lent_while_sending) == (1, [0])


def test_concurrent_posts_with_a_slow_queue_all_answer(database_url: str) -> None:
    """More concurrent POSTs than the pool has connections (10), each send taking 0.2 s: all answer 202 at once
    instead of waiting for the pool's timeout."""
    queue = SlowQueue(database_url, 0.2)
    with _client(database_url, queue) as client:
        workflow = client.post("/workflows", json={"name": "w", "definition": two_steps("http://example.com")},
                               headers=AUTH).json()
        begin = time.monotonic()
        with ThreadPoolExecutor(30) as pool:
            futures = [pool.submit(client.post, f"/workflows/{workflow['id']}/executions", json={"input": {"n": n}},
                                   headers=AUTH) for n in range(30)]
            done, _ = wait(futures, timeout=20)
        elapsed = time.monotonic() - begin
    assert len(done) == 30
    statuses = [f.result().status_code for f in futures]
    assert statuses == [202] * 30
    assert sorted(queue.sent) == sorted(f.result().json()["id"] for f in futures)
    assert elapsed < 15, elapsed  # the pool's timeout is 30 s
