"""fbc logs: the stack's CloudWatch log groups (each service's, the scheduler's), read with FilterLogEvents and
interleaved by time, once or followed.

Which groups: the manifest's "logs" resources (Deployed), by the node they serve; never a name rebuilt. Follow
mode polls each group from a start time that trails the newest event seen by LATE_SECONDS (CloudWatch may
ingest an event after a newer one), and skips the events already shown by their IDs.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from ..emit.manifest import SCHEDULER, Node
from ..plan import Plan
from .aws import Aws, error_code
from .status import Deployed

LATE_SECONDS = 30  # how far back each poll looks again for events ingested late
SCHEDULER_NAME = "scheduler"
WORKERS = "worker"  # every worker service, when no service has that name


@dataclass(frozen=True)
class Group:
    source: str  # what the line is from: a service's name, or scheduler
    name: str  # the log group's physical name


@dataclass(frozen=True)
class Line:
    source: str
    timestamp: int  # milliseconds since the epoch, as CloudWatch gives it
    message: str
    group: str
    stream: str
    event_id: str

    @property
    def key(self) -> tuple[str, str, str]:
        """Unique across groups (an emulator numbers events per stream)."""
        return self.group, self.stream, self.event_id


def groups(found: Deployed, plan: Plan, which: str | None) -> list[Group]:
    """The log groups of `which`: a service's name, scheduler, worker (every worker service, unless a service
    has that name), or None for all of them. An unknown name is a ValueError that lists the choices."""
    every = [Group(_source(entry.node), physical)
             for entry, physical in found.find(role="logs", type="AWS::Logs::LogGroup")]
    sources = {g.source for g in every}
    if which is None:
        chosen = every
    elif which in sources:
        chosen = [g for g in every if g.source == which]
    elif which == WORKERS and plan.workers:
        workers = {s.name for s in plan.workers}
        chosen = [g for g in every if g.source in workers]
    else:
        choices = sorted(sources | ({WORKERS} if plan.workers else set()))
        raise ValueError(f"{which!r} has no logs in {found.stack}: choose one of {', '.join(choices)}")
    missing = [g.source for g in chosen if not g.name]
    if missing:
        raise ValueError(f"the log group of {', '.join(missing)} is not in {found.stack} (not created yet?)")
    return chosen


def _source(node: Node) -> str:
    return SCHEDULER_NAME if node == SCHEDULER else str(node.name or node.kind)


def read(aws: Aws, chosen: list[Group], start: int, pattern: str | None,
         note: Callable[[str], None]) -> list[Line]:
    """Every event from `start` (ms) on in the groups, oldest first; a group that is gone is noted, not fatal."""
    lines: list[Line] = []
    client = aws.client("logs")
    for group in chosen:
        kwargs: dict[str, Any] = {"logGroupName": group.name, "startTime": start}
        if pattern:
            kwargs["filterPattern"] = pattern
        try:
            for page in aws.pages(client.filter_log_events, **kwargs):
                lines += [Line(group.source, int(e["timestamp"]), str(e.get("message", "")), group.name,
                               str(e.get("logStreamName", "")), str(e.get("eventId", "")))
                          for e in page.get("events", [])]
        except ClientError as exc:
            if error_code(exc) != "ResourceNotFoundException":
                raise
            note(f"{group.source}: log group {group.name} does not exist")
    return sorted(lines, key=lambda line: (line.timestamp, line.source, line.stream))


def follow(aws: Aws, chosen: list[Group], start: int, pattern: str | None, show: Callable[[Line], None],
           note: Callable[[str], None]) -> None:
    """Show the events from `start` on, then poll for new ones until stopped (Ctrl-C: common's Stopped)."""
    seen: dict[tuple[str, str, str], int] = {}
    since = start
    said: set[str] = set()

    def once(message: str) -> None:  # a missing group is said once, not every poll
        if message not in said:
            said.add(message)
            note(message)

    while True:
        for line in read(aws, chosen, since, pattern, once):
            if line.key not in seen:
                seen[line.key] = line.timestamp
                show(line)
        if seen:
            since = max(since, max(seen.values()) - LATE_SECONDS * 1000)
            seen = {key: at for key, at in seen.items() if at >= since}
        aws.clock.poll()
