from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..spec import App

if TYPE_CHECKING:
    from ..profiles import ResolvedProfile


@dataclass(frozen=True)
class CheckContext:
    app: App
    # The document as written (environment overlays are checked against it before merging).
    data: dict[str, Any]
    profile: ResolvedProfile | None = None
    # Environment names whose resource names must fit AWS limits (declared ones and the profile's).
    environments: tuple[str, ...] = ()
