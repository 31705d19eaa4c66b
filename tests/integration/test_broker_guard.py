"""The guarded Redis transport against a real Redis."""

from __future__ import annotations

import os
import uuid

import pytest
import redis
from kombu import Connection

from dispatcher.broker import guard as broker_guard
from tests.conftest import require_redis

pytestmark = pytest.mark.integration


def test_closing_a_detached_channel_is_a_connection_error_and_keeps_the_message() -> None:
    """Celery 5.7 can close a consumer's channel after its transport let go of it."""
    require_redis()
    broker_guard.install()
    prefix = f"guard-{uuid.uuid4().hex[:8]}:"
    connection = Connection(
        os.environ["DISPATCHER_BROKER_URL"], transport_options={"global_keyprefix": prefix}
    )
    client = redis.Redis.from_url(os.environ["DISPATCHER_BROKER_URL"])
    try:
        queue = connection.SimpleQueue("guarded")
        queue.put({"n": 1})
        message = queue.get(timeout=5)  # Taken and not acknowledged.
        assert message.payload == {"n": 1}
        channel = connection.default_channel
        assert isinstance(channel, broker_guard.GuardedChannel)
        assert client.hlen(f"{prefix}unacked") == 1
        # What Connection.collect() leaves behind when it is cut short.
        channel._disconnect_pools()
        channel.connection.client = None
        with pytest.raises(redis.ConnectionError, match="reconnect"):
            channel.close()
        # Nothing lost: the message waits in the unacked set for its restore.
        assert client.hlen(f"{prefix}unacked") == 1
    finally:
        for key in client.scan_iter(match=f"{prefix}*"):
            client.delete(key)
        client.close()
