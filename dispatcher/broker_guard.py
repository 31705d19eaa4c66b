"""Keep a worker alive when something that is not a message lands on a queue.

kombu's Redis transport decodes each queue item as a JSON envelope inside its
event loop; an item that is not one (say, bytes pushed by hand or by a broken
client) raises there and stops the whole worker ("Unrecoverable error"), and
the item is lost. The guard below turns such an item into an envelope that
Celery cannot decode, so it takes the ordinary decode-error path, where our
consumer records it as a rejected message and acknowledges it.
"""

from __future__ import annotations

import uuid
from typing import Any

import kombu.transport.redis as redis_transport

_original_loads = redis_transport.loads
_CONTENT_TYPE = "application/x-dispatcher-undecodable"


def _envelope_for(raw: Any) -> dict[str, Any]:
    text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw)
    return {
        "body": text[:4000],
        "content-type": _CONTENT_TYPE,
        "content-encoding": "utf-8",
        "headers": {},
        "properties": {
            "delivery_tag": f"undecodable-{uuid.uuid4()}",
            "delivery_info": {"exchange": "", "routing_key": ""},
            "body_encoding": None,
            "priority": 0,
        },
    }


def _guarded_loads(raw: Any, *args: Any, **kwargs: Any) -> Any:
    try:
        value = _original_loads(raw, *args, **kwargs)
    except ValueError:
        return _envelope_for(raw)
    if not isinstance(value, dict) or not isinstance(value.get("properties"), dict):
        return _envelope_for(raw)
    if "delivery_tag" not in value["properties"]:
        return _envelope_for(raw)
    return value


def install() -> None:
    """Idempotent: route kombu's Redis envelope decoding through the guard."""
    if redis_transport.loads is not _guarded_loads:
        redis_transport.loads = _guarded_loads
