"""What the broker holds: queue depth per lane and unacknowledged messages.

On Redis a queue is a list per priority step (``name``, ``name\\x06\\x163``,
...), and messages taken but not yet acknowledged sit in one ``unacked`` hash;
all keys carry the installation's prefix.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import redis
import redis.sentinel
from redis.backoff import NoBackoff
from redis.retry import Retry

from dispatcher.broker.journal import INDEX as JOURNAL_INDEX
from dispatcher.domain.kinds import ALL_QUEUES
from dispatcher.errors import BrokerUnavailable
from dispatcher.settings import Settings, redact_url

PRIORITY_SEPARATOR = "\x06\x16"
# The sweeper's lock (one sweep per interval across all workers) and when a
# sweep last ran; both under the installation's prefix.
SWEEP_LOCK = "dispatcher:sweep-lock"
LAST_SWEEP = "dispatcher:last-sweep"
# Set while a webhook task is queued and not yet started (see send_webhooks_soon).
WEBHOOKS_ASKED = "dispatcher:webhooks-asked"
PRIORITY_STEPS = (0, 3, 6, 9)


@dataclass(frozen=True)
class BrokerState:
    depths: dict[str, int]  # queue name -> messages waiting, all priorities
    unacked: int
    oldest_unacked_seconds: float | None
    journal: int = 0  # accepted events filed in the journal (journal.py)
    oldest_journal_seconds: float | None = None
    last_sweep_seconds: float | None = None  # how long ago a sweep last ran; None: never


def _keys(prefix: str, queue: str) -> list[str]:
    return [
        f"{prefix}{queue}" if step == 0 else f"{prefix}{queue}{PRIORITY_SEPARATOR}{step}"
        for step in PRIORITY_STEPS
    ]


def queue_depth(client: Any, prefix: str, queue: str) -> int:
    """Messages waiting in one queue, all priority steps."""
    with client.pipeline(transaction=False) as pipe:
        for key in _keys(prefix, queue):
            pipe.llen(key)
        return int(sum(pipe.execute()))


REDIS_SCHEMES = ("redis://", "rediss://", "unix://", "redis+socket://")
SENTINEL_SCHEME = "sentinel://"


def redis_for_url(url: str, master_name: str | None = None) -> Any | None:
    """A redis-py client for the broker's Redis; None for a URL that is not Redis.

    With a ``sentinel://`` URL (Celery's form: ``sentinel://h1:26379;sentinel://h2:26379``)
    the client asks the sentinels for the current primary of ``master_name``
    and follows it through a failover.
    """
    if url.startswith(SENTINEL_SCHEME):
        if not master_name:
            return None
        return _sentinel_client(url, master_name)
    if not url.startswith(REDIS_SCHEMES):
        return None

    return redis.Redis.from_url(
        url.replace("redis+socket://", "unix://"),
        socket_timeout=2,
        socket_connect_timeout=2,
        # One immediate retry renews a connection that a Redis restart broke;
        # more, with backoff, would keep a caller waiting on a Redis that is down.
        retry=Retry(NoBackoff(), 1),
    )


def _sentinel_client(url: str, master_name: str) -> Any:
    nodes: list[tuple[str, int]] = []
    password: str | None = None
    for part in url.split(";"):
        parsed = urlsplit(part.strip())
        nodes.append((parsed.hostname or "localhost", parsed.port or 26379))
        password = password or parsed.password
    sentinel = redis.sentinel.Sentinel(
        nodes, socket_timeout=2, socket_connect_timeout=2, sentinel_kwargs={"socket_timeout": 2}
    )
    return sentinel.master_for(
        master_name,
        socket_timeout=2,
        socket_connect_timeout=2,
        password=password,
        retry=Retry(NoBackoff(), 1),
    )


def redis_for_settings(settings: Settings) -> Any | None:
    """``redis_for_url`` for this installation's broker."""
    return redis_for_url(settings.broker_url, settings.broker_sentinel_master)


def redis_client(settings: Settings) -> Any:
    client = redis_for_settings(settings)
    if client is None:
        raise BrokerUnavailable(
            f"queue depths need a Redis broker; DISPATCHER_BROKER_URL is "
            f"{redact_url(settings.broker_url)}"
        )
    return client


def broker_state(settings: Settings) -> BrokerState:
    """Read queue depths and unacked messages; raise ``BrokerUnavailable``."""
    prefix = settings.broker_prefix
    client = redis_client(settings)
    try:
        with client.pipeline(transaction=False) as pipe:
            for queue in ALL_QUEUES:
                for key in _keys(prefix, queue):
                    pipe.llen(key)
            pipe.hlen(f"{prefix}unacked")
            pipe.zrange(f"{prefix}unacked_index", 0, 0, withscores=True)
            pipe.zcard(f"{prefix}{JOURNAL_INDEX}")
            pipe.zrange(f"{prefix}{JOURNAL_INDEX}", 0, 0, withscores=True)
            pipe.get(f"{prefix}{LAST_SWEEP}")
            results = pipe.execute()
    except redis.RedisError as exc:
        raise BrokerUnavailable(
            f"cannot reach Redis at {redact_url(settings.broker_url)}: {exc}; check "
            "DISPATCHER_BROKER_URL and that Redis is running"
        ) from None
    finally:
        client.close()
    depths: dict[str, int] = {}
    position = 0
    for queue in ALL_QUEUES:
        depths[queue] = int(sum(results[position : position + len(PRIORITY_STEPS)]))
        position += len(PRIORITY_STEPS)
    unacked = int(results[position])
    oldest = results[position + 1]
    age = time.time() - float(oldest[0][1]) if oldest else None
    journal = int(results[position + 2])
    first = results[position + 3]
    journal_age = time.time() - float(first[0][1]) if first else None
    swept = results[position + 4]
    sweep_age = max(0.0, time.time() - float(swept)) if swept else None
    return BrokerState(depths, unacked, age, journal, journal_age, sweep_age)
