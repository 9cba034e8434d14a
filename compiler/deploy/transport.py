"""How fbc talks to AWS: bounded connect and read timeouts, one retry layer (botocore's standard or adaptive
mode, configured once for every client of a run), and a line for each retry, so that a slow, throttled or
silent endpoint is never waited on without a word.

Before this, botocore's 60 s read timeout times 8 attempts kept `fbc diff` silent for minutes on an endpoint
that never answered, and fbc's own 6 retries around botocore's 8 waited 265 s on throttling before one line.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from botocore.config import Config
from botocore.exceptions import ConnectionClosedError, ConnectTimeoutError, EndpointConnectionError, ReadTimeoutError

# Every AWS call: a connection within CONNECT_TIMEOUT, each read within READ_TIMEOUT, at most MAX_ATTEMPTS
# attempts (AWS_MAX_ATTEMPTS or the profile's max_attempts instead, as for every AWS tool).
# FBC_CONNECT_TIMEOUT and FBC_READ_TIMEOUT (seconds) override the timeouts.
CONNECT_TIMEOUT = 5.0
READ_TIMEOUT = 20.0
MAX_ATTEMPTS = 5
THROTTLING = {"Throttling", "ThrottlingException", "RequestLimitExceeded", "TooManyRequestsException",
              "ThrottledException", "RequestThrottledException", "RequestThrottled", "SlowDown"}

Notice = Callable[[str], None]


class SetupError(Exception):
    """AWS is not set up for this run (credentials, region, profile, a setting): the environment's problem,
    not the deploy's, so the CLI exits 2 as for a usage error."""


def _seconds(variable: str, default: float) -> float:
    text = os.environ.get(variable)
    if not text:
        return default
    try:
        value = float(text)
    except ValueError:
        value = 0
    if value <= 0:
        raise SetupError(f"{variable}={text!r}: expected a number of seconds over 0")
    return value


@dataclass(frozen=True)
class Http:
    """How every client of a run talks to AWS: timeouts and the one retry layer."""

    connect_timeout: float = CONNECT_TIMEOUT
    read_timeout: float = READ_TIMEOUT
    mode: str = "standard"  # or adaptive (AWS_RETRY_MODE); botocore's legacy mode is never used
    attempts: int | None = MAX_ATTEMPTS  # None: AWS_MAX_ATTEMPTS or the profile's max_attempts decides

    @staticmethod
    def configured(sess: Any = None) -> Http:
        """The environment's choices: FBC_CONNECT_TIMEOUT, FBC_READ_TIMEOUT, and botocore's own retry_mode and
        max_attempts (environment or profile), read through the boto3 session when there is one."""
        def setting(name: str) -> Any:
            botocore_session = getattr(sess, "_session", None)
            return botocore_session.get_config_variable(name) if botocore_session is not None else None

        return Http(_seconds("FBC_CONNECT_TIMEOUT", CONNECT_TIMEOUT), _seconds("FBC_READ_TIMEOUT", READ_TIMEOUT),
                    "adaptive" if setting("retry_mode") == "adaptive" else "standard",
                    None if setting("max_attempts") else MAX_ATTEMPTS)

    def config(self) -> Config:
        retries: Any = {"mode": self.mode}
        if self.attempts is not None:
            retries["total_max_attempts"] = self.attempts
        return Config(connect_timeout=self.connect_timeout, read_timeout=self.read_timeout, retries=retries)

    def quick(self) -> Http:
        """For the clean-up after an interruption: short waits, one retry."""
        return Http(min(self.connect_timeout, 3), min(self.read_timeout, 5), self.mode, 2)


def watch(client: Any, http: Http, notice: Notice) -> Any:
    """`client`, saying each retry botocore makes: `fbc: DescribeStacks: retrying (throttled, attempt 2)`.
    Why the last attempt failed is noted in the request's context (needs-retry sees every attempt's outcome)
    and said when the next attempt is made (request-created), so only retries that happen are said."""
    events = getattr(getattr(client, "meta", None), "events", None)
    if events is None:  # a test's fake session may hand out anything
        return client

    def why(request_dict: dict[str, Any], response: Any = None, caught_exception: Any = None, **_: Any) -> None:
        request_dict["context"]["fbc_retry_reason"] = _reason(http, response, caught_exception)

    def say(request: Any, operation_name: str, **_: Any) -> None:
        context = getattr(request, "context", {})
        attempt = context.get("retries", {}).get("attempt", 1)
        if attempt > 1:
            notice(f"fbc: {operation_name}: retrying ({context.get('fbc_retry_reason', 'failed')}, attempt {attempt})")

    events.register("needs-retry", why, unique_id="fbc-retry-reason")
    events.register("request-created", say, unique_id="fbc-retry-notice")
    return client


def _reason(http: Http, response: Any, caught: Any) -> str:
    if isinstance(caught, ReadTimeoutError):
        return f"no answer within {http.read_timeout:g}s"
    if isinstance(caught, ConnectTimeoutError):
        return f"no connection within {http.connect_timeout:g}s"
    if isinstance(caught, EndpointConnectionError):
        return "cannot connect"
    if isinstance(caught, ConnectionClosedError):
        return "connection closed"
    if caught is not None:
        return type(caught).__name__
    status, parsed = response if isinstance(response, tuple) else (None, {})
    code = (parsed or {}).get("Error", {}).get("Code", "")
    return "throttled" if code in THROTTLING else code or f"HTTP {getattr(status, 'status_code', '?')}"
