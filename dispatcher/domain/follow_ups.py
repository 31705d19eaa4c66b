"""Work the orchestrator hands back for later: a delivery to attempt again."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class FollowUp:
    """A delivery to attempt again after ``delay`` seconds, on its lane."""

    delivery_id: int
    lane: str
    delay: float
