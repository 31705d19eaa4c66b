"""Keep a worker alive when a queue holds garbage or the broker goes away.

kombu's Redis transport decodes each queue item as a JSON envelope inside its
event loop; an item that is not one (bytes pushed by hand, a broken client)
raises there and stops the whole worker ("Unrecoverable error"), and the
item is lost. The channel below decodes queue items defensively: such an
item becomes an envelope that Celery cannot decode, so it takes the ordinary
decode-error path, where our consumer records it as a rejected message and
acknowledges it.

When the broker goes away, Celery 5.7 may close a consumer's connection after
kombu has already detached it from its transport; closing the channel then
tries to put its unacknowledged messages back through a connection that no
longer knows its address and raises AttributeError, which stops the worker
("Unrecoverable error"). The channel below reports that case as the
connection error it is, which Celery handles by reconnecting; the messages
stay in Redis's unacked set and come back after the visibility timeout.

Everything else (acknowledgements, the restore of unacked messages) is
kombu's own code, untouched.
"""

from __future__ import annotations

import uuid
from typing import Any

import kombu.transport
import kombu.transport.redis as redis_transport
from kombu.utils.encoding import bytes_to_str
from kombu.utils.json import loads

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


def decode_envelope(item: Any) -> dict[str, Any]:
    """Decode one queue item; anything that is not an envelope becomes a harmless one."""
    try:
        value = loads(bytes_to_str(item))
    except ValueError:
        return _envelope_for(item)
    if (
        not isinstance(value, dict)
        or not isinstance(value.get("properties"), dict)
        or "delivery_tag" not in value["properties"]
    ):
        return _envelope_for(item)
    return value


class GuardedChannel(redis_transport.Channel):  # type: ignore[misc]
    """kombu's Redis channel with a defensive decode of queue items."""

    def _connparams(self, asynchronous: bool = False) -> dict[str, Any]:
        if self.connection.client is None:
            raise redis_transport.redis.ConnectionError(
                "the broker connection was closed; reconnect to use this channel"
            )
        params: dict[str, Any] = super()._connparams(asynchronous=asynchronous)
        return params

    def _brpop_read(self, **options: Any) -> bool:
        # Mirrors kombu.transport.redis.Channel._brpop_read (kombu 5.x) except
        # for the decoding of the item.
        try:
            try:
                dest__item = self.client.parse_response(self.client.connection, "BRPOP", **options)
            except self.connection_errors:
                self.client.connection.disconnect()
                raise
            if not dest__item:
                raise redis_transport.Empty()
            dest, item = dest__item
            dest = bytes_to_str(dest).rsplit(self.sep, 1)[0]
            self._queue_cycle.rotate(dest)
            self.connection._deliver(decode_envelope(item), dest)
            return True
        finally:
            self._in_poll = None
            flush = getattr(self, "_flush_brpop_reauth", None)
            if flush is not None:
                flush()

    def _get(self, queue: str) -> dict[str, Any]:
        with self.conn_or_acquire() as client:
            for priority in self.priority_steps:
                item = client.rpop(self._q_for_pri(queue, priority))
                if item:
                    self._maybe_update_queues_expire(client, queue)
                    return decode_envelope(item)
            self._maybe_update_queues_expire(client, queue)
            raise redis_transport.Empty()


class GuardedTransport(redis_transport.Transport):  # type: ignore[misc]
    Channel = GuardedChannel


def install() -> None:
    """Idempotent: make redis:// and rediss:// URLs use the guarded transport."""
    for scheme in ("redis", "rediss"):
        kombu.transport.TRANSPORT_ALIASES[scheme] = "dispatcher.broker_guard:GuardedTransport"
