"""Notification dispatcher for the customer self-service portal."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["publish"]


def publish(event: Mapping[str, Any]) -> str:
    """Validate ``event`` and enqueue it; return its ``event_id`` (CONTRACT §4)."""
    # Every module of the package imports this one first; the publisher (and
    # with it Celery) loads only for those who publish.
    from dispatcher.broker.publisher import publish as _publish  # noqa: PLC0415

    return _publish(event)
