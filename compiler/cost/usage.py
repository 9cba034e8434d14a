"""What traffic an estimate assumes: the user's figures, and the fixed assumptions printed with every report."""

from __future__ import annotations

from dataclasses import dataclass

HOURS_PER_MONTH = 730  # AWS's own monthly convention
REQUEST_SECONDS = 0.1  # billed duration of one API request on Lambda
TASK_STARTUP_SECONDS = 30  # a Pipe-started task: image pull and start-up are billed
FARGATE_MINIMUM_SECONDS = 60  # Fargate bills per second with a one-minute minimum
SCHEDULER_SECONDS = 1.0  # one scheduler or sweeper invocation
PIPE_POLLERS = 5  # concurrent 20-second long polls Pipes keeps on an SQS source (as Lambda's SQS source does)
LONG_POLL_SECONDS = 20
VISIBILITY_EXTEND_SECONDS = 20  # a poll worker extends a running message's visibility this often
NEW_CONNECTIONS_PER_LCU_HOUR = 25 * 3600  # ALB: 1 LCU = 25 new connections a second
ALB_MIN_ZONES = 2  # an Application Load Balancer spans two availability zones at least
SPOT_SENSITIVITY = (0.5, 0.7)  # Fargate Spot discounts a report also shows the total at ("up to 70%" is AWS's)
RESPONSE_KB = 50  # average response through CloudFront (API JSON is smaller, frontend pages larger)


@dataclass(frozen=True)
class Usage:
    executions_per_month: int = 10_000
    avg_duration: float = 30.0  # seconds one execution runs
    requests_per_month: int = 100_000  # HTTP requests to each public web service
    spot_discount: float = 0.70

    def assumptions(self) -> list[str]:
        return [
            f"{self.executions_per_month:,} executions a month, {self.avg_duration:g} s each",
            f"{self.requests_per_month:,} requests a month to each public web service, "
            f"{REQUEST_SECONDS * 1000:g} ms each on Lambda, each a new connection on a load balancer",
            f"Fargate Spot {self.spot_discount:.0%} below on-demand",
            f"a task per message bills start-up ({TASK_STARTUP_SECONDS} s) and at least {FARGATE_MINIMUM_SECONDS} s",
            f"Pipes keeps {PIPE_POLLERS} {LONG_POLL_SECONDS}-second long polls on its queue",
            "a steady stream of executions (sparse bursts add up to 5 minutes of worker time each in standard)",
            f"{RESPONSE_KB} KB per response through CloudFront; no other data transfer, NAT data processing or "
            f"log volume",
        ]
