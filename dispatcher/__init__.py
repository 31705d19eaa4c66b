"""Notification dispatcher for the customer self-service portal."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["publish"]


def publish(event: Mapping[str, Any]) -> str:
    """Validate ``event`` and enqueue it; return its ``event_id`` (CONTRACT §4)."""
    from dispatcher.broker.publisher import publish as _publish

    return _publish(event)
