"""The safety net under Redis's hand-over: accepted events, until the database holds them.

kombu's Redis transport takes a message off its queue (BRPOP) and only then
files it as unacknowledged. A worker killed between the two, or a Redis that
goes away between them, loses that message, and with it an event that
``publish()`` had accepted. ``publish()`` therefore also files every event in
a journal in the same Redis, before enqueueing it. The sweeper looks at
entries older than a grace period: an event the database holds is dropped
from the journal; one it does not hold is enqueued again, but only when its
lane's queue is empty, so that an event merely waiting its turn behind a
batch is left alone. Enqueueing an event twice is harmless: ``event_id``
makes handling idempotent.

Clients that send ``dispatcher.handle_event`` themselves (another language)
bypass the journal; they get what Redis alone gives.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

log = logging.getLogger("dispatcher.journal")

# Redis keys below the installation's prefix.
ENTRIES = "dispatcher:journal"
INDEX = "dispatcher:journal:index"


@dataclass(frozen=True)
class Entry:
    event_id: str
    queue: str
    event: dict[str, Any]


# How long filing waits for a replica to confirm an entry (Sentinel set-ups).
REPLICA_WAIT_MS = 500


class Journal:
    """Journal entries in one Redis: a hash of events and an index by time.

    With ``replicas`` (a Redis primary with replicas under Sentinel), filing
    waits until that many replicas hold the entry (Redis ``WAIT``), so that an
    accepted event survives a failover to a replica even when its task
    message, written a moment later, does not: the sweeper enqueues it again.
    """

    def __init__(self, client: Any, prefix: str, replicas: int = 0) -> None:
        self.client = client
        self.prefix = prefix
        self.replicas = replicas
        self.entries_key = f"{prefix}{ENTRIES}"
        self.index_key = f"{prefix}{INDEX}"
        self.unconfirmed = 0  # entries filed without a replica's confirmation

    def file(self, entries: Sequence[Entry], now: float) -> None:
        if not entries:
            return
        # WAIT counts the writes of its own connection, so it travels in the
        # same (plain) pipeline; MULTI would not allow it.
        with self.client.pipeline(transaction=not self.replicas) as pipe:
            pipe.hset(
                self.entries_key,
                mapping={
                    e.event_id: json.dumps({"queue": e.queue, "event": e.event}) for e in entries
                },
            )
            pipe.zadd(self.index_key, {e.event_id: now for e in entries})
            if self.replicas:
                pipe.execute_command("WAIT", self.replicas, REPLICA_WAIT_MS)
            results = pipe.execute()
        if self.replicas and int(results[-1]) < self.replicas:
            self.unconfirmed += len(entries)
            log.warning(
                "journal entry not confirmed by a replica within %d ms; a failover now "
                "could lose it",
                REPLICA_WAIT_MS,
            )

    def forget(self, event_ids: Iterable[str]) -> None:
        ids = list(event_ids)
        if not ids:
            return
        with self.client.pipeline(transaction=True) as pipe:
            pipe.hdel(self.entries_key, *ids)
            pipe.zrem(self.index_key, *ids)
            pipe.execute()

    def older_than(self, moment: float, limit: int) -> list[Entry]:
        ids = [
            i.decode() if isinstance(i, bytes) else str(i)
            for i in self.client.zrangebyscore(self.index_key, "-inf", moment, start=0, num=limit)
        ]
        if not ids:
            return []
        found: list[Entry] = []
        missing: list[str] = []
        for event_id, raw in zip(ids, self.client.hmget(self.entries_key, ids), strict=True):
            if raw is None:
                missing.append(event_id)
                continue
            value = json.loads(raw)
            found.append(Entry(event_id, value["queue"], value["event"]))
        if missing:  # An index entry without its event: nothing to rescue.
            self.client.zrem(self.index_key, *missing)
        return found

    def touch(self, event_ids: Iterable[str], now: float) -> None:
        ids = list(event_ids)
        if ids:
            self.client.zadd(self.index_key, dict.fromkeys(ids, now), xx=True)

    def size(self) -> int:
        return int(self.client.zcard(self.index_key))


@dataclass(frozen=True)
class Rescue:
    forgotten: int  # recorded in the database: dropped from the journal
    requeued: list[Entry]  # lost on the way: to enqueue again
    waiting: int  # not recorded, but their lane still has work queued


def rescue(
    journal: Journal,
    recorded: Callable[[list[str]], set[str]],
    queue_is_empty: Callable[[str], bool],
    now: float,
    grace: float,
    limit: int = 5000,
) -> Rescue:
    """Sort journal entries older than ``grace``: forget, enqueue again, or wait."""
    entries = journal.older_than(now - grace, limit)
    if not entries:
        return Rescue(0, [], 0)
    held = recorded([e.event_id for e in entries])
    journal.forget(e.event_id for e in entries if e.event_id in held)
    open_entries = [e for e in entries if e.event_id not in held]
    empty = {queue: queue_is_empty(queue) for queue in {e.queue for e in open_entries}}
    requeued = [e for e in open_entries if empty[e.queue]]
    # Their next look comes one grace period later, by which time the
    # enqueued copy has long been handled and recorded.
    journal.touch((e.event_id for e in requeued), now)
    return Rescue(len(held), requeued, len(open_entries) - len(requeued))
