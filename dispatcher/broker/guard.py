"""Keep a worker alive when a queue holds garbage or the broker goes away.

kombu's Redis transport decodes each queue item as a JSON envelope inside its
event loop; an item that is not one (bytes pushed by hand, a broken client,
properties of the wrong type, an unknown body encoding) raises there and
stops the whole worker ("Unrecoverable error"), and the item comes back to
stop the next one. The channel below decodes queue items defensively: such
an item becomes an envelope that carries the reason in a header, and the
consumer (``dispatcher.worker.tasks.RecordingConsumer``) records it as a rejected
message and acknowledges it.

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

import base64
import uuid
from typing import Any

import kombu.transport
import kombu.transport.redis as redis_transport
from kombu.utils.encoding import bytes_to_str
from kombu.utils.json import loads

_CONTENT_TYPE = "application/x-dispatcher-undecodable"
# The header that carries, to the consumer, why an item was no envelope.
REASON_HEADER = "x-dispatcher-rejected"
_MAX_EXCERPT = 4000


def _envelope_for(raw: Any, reason: str, queue: str) -> dict[str, Any]:
    text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw)
    return {
        "body": text[:_MAX_EXCERPT],
        "content-type": _CONTENT_TYPE,
        "content-encoding": "utf-8",
        "headers": {REASON_HEADER: reason},
        "properties": {
            "delivery_tag": f"undecodable-{uuid.uuid4()}",
            "delivery_info": {"exchange": "", "routing_key": queue},
            "body_encoding": None,
            "priority": 0,
        },
    }


def _properties_problem(properties: Any) -> str | None:
    if not isinstance(properties, dict):
        return "the envelope's 'properties' must be a JSON object"
    tag = properties.get("delivery_tag")
    if isinstance(tag, bool) or not isinstance(tag, str | int) or tag == "":
        return "the envelope's 'properties.delivery_tag' must be a string"
    info = properties.get("delivery_info", {})
    if not isinstance(info, dict):
        return "the envelope's 'properties.delivery_info' must be a JSON object"
    for key in ("exchange", "routing_key"):
        if info.get(key) is not None and not isinstance(info[key], str):
            return f"the envelope's 'properties.delivery_info.{key}' must be a string"
    priority = properties.get("priority")
    if priority is not None and (isinstance(priority, bool) or not isinstance(priority, int)):
        return "the envelope's 'properties.priority' must be an integer"
    encoding = properties.get("body_encoding")
    if encoding is not None and encoding != "base64":
        return f"unknown body_encoding {str(encoding)[:40]!r}; use base64 or none"
    return None


def envelope_problem(value: Any) -> str | None:
    """Why kombu could not turn ``value`` into a message, or None when it can."""
    if not isinstance(value, dict):
        return "a queue item must be a kombu envelope, a JSON object"
    problem = _properties_problem(value.get("properties"))
    if problem is not None:
        return problem
    for key in ("content-type", "content-encoding"):
        if value.get(key) is not None and not isinstance(value[key], str):
            return f"the envelope's {key!r} must be a string"
    if value.get("headers") is not None and not isinstance(value["headers"], dict):
        return "the envelope's 'headers' must be a JSON object"
    body = value.get("body")
    if body is not None and not isinstance(body, str):
        return "the envelope's 'body' must be a string"
    if body and value["properties"].get("body_encoding") == "base64":
        try:
            base64.b64decode(body, validate=True)
        except ValueError:
            return "the envelope's body is not valid base64 although body_encoding says so"
    return None


def decode_envelope(item: Any, queue: str = "") -> dict[str, Any]:
    """Decode one queue item; anything that is not a usable envelope becomes a harmless one.

    ``queue`` is where the item came from: kombu files a message it hands out
    under its exchange and routing key, and one without them would be lost.
    """
    try:
        value = loads(bytes_to_str(item))
    except (ValueError, UnicodeDecodeError, RecursionError):
        return _envelope_for(
            item, "the queue item cannot be decoded: it is not a JSON kombu envelope", queue
        )
    problem = envelope_problem(value)
    if problem is not None:
        return _envelope_for(item, problem, queue)
    properties = value["properties"]
    info = properties.get("delivery_info") or {}
    if info.get("exchange") is None or info.get("routing_key") is None:
        properties["delivery_info"] = {
            **info,
            "exchange": info.get("exchange") or "",
            "routing_key": info.get("routing_key") or queue,
        }
    return dict(value)


class _Guard:
    """The overrides, for kombu's plain Redis channel and its Sentinel channel alike."""

    # Provided by the kombu channel this is mixed into.
    connection: Any
    client: Any
    connection_errors: Any
    sep: str
    priority_steps: Any
    _queue_cycle: Any
    _in_poll: Any

    def _connparams(self, asynchronous: bool = False) -> dict[str, Any]:
        if self.connection.client is None:
            raise redis_transport.redis.ConnectionError(
                "the broker connection was closed; reconnect to use this channel"
            )
        params: dict[str, Any] = super()._connparams(asynchronous=asynchronous)  # type: ignore[misc]
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
            self.connection._deliver(decode_envelope(item, dest), dest)
            return True
        finally:
            self._in_poll = None
            flush = getattr(self, "_flush_brpop_reauth", None)
            if flush is not None:
                flush()

    def _get(self, queue: str) -> dict[str, Any]:
        with self.conn_or_acquire() as client:  # type: ignore[attr-defined]
            for priority in self.priority_steps:
                item = client.rpop(self._q_for_pri(queue, priority))  # type: ignore[attr-defined]
                if item:
                    self._maybe_update_queues_expire(client, queue)  # type: ignore[attr-defined]
                    return decode_envelope(item, queue)
            self._maybe_update_queues_expire(client, queue)  # type: ignore[attr-defined]
            raise redis_transport.Empty()


class GuardedChannel(_Guard, redis_transport.Channel):  # type: ignore[misc]
    """kombu's Redis channel with a defensive decode of queue items."""


class GuardedSentinelChannel(_Guard, redis_transport.SentinelChannel):  # type: ignore[misc]
    """kombu's Redis Sentinel channel, guarded the same way."""


class GuardedTransport(redis_transport.Transport):  # type: ignore[misc]
    Channel = GuardedChannel


class GuardedSentinelTransport(redis_transport.SentinelTransport):  # type: ignore[misc]
    Channel = GuardedSentinelChannel


def install() -> None:
    """Idempotent: make redis://, rediss:// and sentinel:// URLs use the guarded transports."""
    for scheme in ("redis", "rediss"):
        kombu.transport.TRANSPORT_ALIASES[scheme] = "dispatcher.broker.guard:GuardedTransport"
    kombu.transport.TRANSPORT_ALIASES["sentinel"] = (
        "dispatcher.broker.guard:GuardedSentinelTransport"
    )
