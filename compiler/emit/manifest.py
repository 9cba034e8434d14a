"""What the emitters made: every resource with its logical ID, its type, the plan node it serves and its role.

Consumers of a build (`fbc cost`, `fbc graph`) read this instead of guessing from logical IDs or template text
(DESIGN principle 12): a renamed resource keeps its entry, so it cannot be silently mispriced or misdrawn.
Stack.add records an entry for each resource, and cannot be called without the node and the role.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Literal, NamedTuple

NodeKind = Literal["service", "queue", "schedule", "scheduler", "stack"]

# What a resource does for its node. Subnets say their tier, so placement needs no logical-ID prefixes.
Role = Literal[
    "network", "public-subnet", "private-subnet", "database-subnet", "nat",
    "ingress",  # load balancer, listeners, target groups, function URLs, CloudFront, and their firewall rules
    "cluster", "task", "compute", "function", "dispatch", "scaling",
    "queue", "dead-letter", "database", "schedule",
    "permissions", "logs", "encryption", "alerts", "alarm", "dashboard",
]


class Node(NamedTuple):
    """The plan node a resource serves: ("service", name), ("queue", name), ("schedule", name), ("scheduler",
    None): the function behind every schedule and the sweeper, or ("stack", None): the whole application."""

    kind: NodeKind
    name: str | None = None


STACK = Node("stack")
SCHEDULER = Node("scheduler")


def service(name: str) -> Node:
    return Node("service", name)


def queue(name: str) -> Node:
    return Node("queue", name)


def schedule(name: str) -> Node:
    return Node("schedule", name)


@dataclass(frozen=True)
class Entry:
    logical_id: str
    type: str  # the CloudFormation resource type
    node: Node
    role: Role


@dataclass(frozen=True)
class Manifest:
    entries: tuple[Entry, ...]  # in the order the emitters added them
    _by_id: dict[str, Entry] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_by_id", {e.logical_id: e for e in self.entries})

    def __iter__(self) -> Iterator[Entry]:
        return iter(self.entries)

    def __len__(self) -> int:
        return len(self.entries)

    def __contains__(self, logical_id: object) -> bool:
        return logical_id in self._by_id

    def __getitem__(self, logical_id: str) -> Entry:
        return self._by_id[logical_id]

    def find(self, node: Node | None = None, role: Role | None = None, type: str | None = None) -> list[Entry]:
        """The entries that match every criterion given, by logical ID (the template's order)."""
        return sorted((e for e in self.entries if node in (None, e.node) and role in (None, e.role)
                       and type in (None, e.type)), key=lambda e: e.logical_id)

    def one(self, node: Node | None = None, role: Role | None = None, type: str | None = None) -> Entry | None:
        """The entry that matches, or None; more than one is a bug in the emitter or the question."""
        found = self.find(node, role, type)
        assert len(found) <= 1, found
        return found[0] if found else None
