"""ECS task scale-in protection for poll mode: on while the task holds at least one execution, off when idle.

A standard worker is an ECS service scaled by queue alarms. Without protection, a scale-in stops any task,
busy or not, and its execution is interrupted (released at best). With it, ECS stops only unprotected tasks
and keeps the rest until they are idle. The agent endpoint is ${ECS_AGENT_URI}/task-protection/v1/state
(ECS sets ECS_AGENT_URI in every container): PUT {"ProtectionEnabled": true, "ExpiresInMinutes": M} answers
{"protection": {"ProtectionEnabled": true, "ExpirationDate": ..., "TaskArn": ...}}, a refusal {"failure": ...}
or {"error": ...}. The task role needs ecs:UpdateTaskProtection on its own task.

M is twice the worker timeout plus a margin, so an execution that starts just before a refresh is covered
even if every later refresh fails; while busy the protection is renewed once half of it has passed. A failing
agent call is logged and retried on the next change (or renewal tick), never raised.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable

log = logging.getLogger("flowbuilder.worker.protection")

MARGIN_SECONDS = 60  # beyond the worker timeout: releasing and committing the outcome
MAX_MINUTES = 2880  # what the agent accepts (48 hours)


def protection_minutes(worker_timeout: int) -> int:
    return max(1, min(MAX_MINUTES, math.ceil(2 * (worker_timeout + MARGIN_SECONDS) / 60)))


class ScaleInProtection:
    def __init__(self, agent_uri: str, minutes: int, clock: Callable[[], float] = time.monotonic,
                 request_timeout: float = 5.0) -> None:
        self.url = f"{agent_uri.rstrip('/')}/task-protection/v1/state"
        self.minutes = minutes
        self.clock = clock
        self.request_timeout = request_timeout
        self._lock = threading.Lock()
        self._busy = 0
        # What the agent last confirmed (a task starts unprotected); None after a failed call: unknown.
        self._protected: bool | None = False
        self._until = 0.0  # clock() when the confirmed protection lapses

    def busy(self) -> None:
        """An execution is about to start (call before claiming it)."""
        with self._lock:
            self._busy += 1
            self._sync()

    def idle(self) -> None:
        """An execution has ended (its outcome committed)."""
        with self._lock:
            self._busy = max(0, self._busy - 1)
            self._sync()

    def tick(self) -> None:
        """Renew a protection half gone while busy; retry a call that failed."""
        with self._lock:
            self._sync()

    def _sync(self) -> None:
        want = self._busy > 0
        if want:
            half_gone = self.clock() >= self._until - self.minutes * 30
            if self._protected is not True or half_gone:
                self._put(True)
        elif self._protected is not False:
            self._put(False)

    def _put(self, enabled: bool) -> None:
        body: dict[str, object] = {"ProtectionEnabled": enabled}
        if enabled:
            body["ExpiresInMinutes"] = self.minutes
        import httpx  # here, not at import: once mode (no ECS agent) never needs it

        started = self.clock()
        try:
            response = httpx.put(self.url, json=body, timeout=self.request_timeout)
            answer = response.json()
            confirmed = answer.get("protection", {}).get("ProtectionEnabled") if isinstance(answer, dict) else None
            if response.status_code != 200 or confirmed is not enabled:
                raise ValueError(f"HTTP {response.status_code}: {response.text[:300]}")
        except Exception as exc:  # the agent is down, throttled or refused: try again on the next change
            self._protected = None
            log.warning("scale-in protection %s failed: %s", "on" if enabled else "off", exc)
            return
        self._protected = enabled
        self._until = started + self.minutes * 60 if enabled else 0.0
        log.info("scale-in protection %s", f"on for {self.minutes} min" if enabled else "off")
