"""A relay's acceptance, made durable at once: at most one duplicate per killed worker.

Outcomes are written to the record in batches; a worker killed between a
relay's 250 and the batch's write would leave every e-mail of the batch
"sending", and each would be sent again. So each acceptance is also noted in
Redis before the next e-mail goes out (one SET), and a delivery taken over
from a dead worker is first looked up there: if the relay took it, it is
recorded as sent instead of being sent again. Only the e-mail in flight at
the moment of the kill can still arrive twice.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import redis

log = logging.getLogger("dispatcher.delivery")

KEY = "dispatcher:accepted:"
# Takeovers happen within minutes (the sending lease, the visibility
# timeout); a day leaves room for a database outage in between.
TTL_SECONDS = 86_400


@dataclass(frozen=True)
class Acceptance:
    code: int
    text: str
    at: datetime
    relay: str | None = None


class AcceptanceMarks:
    """Acceptance marks in the broker's Redis, one key per delivery, expiring."""

    def __init__(self, client: Any, prefix: str) -> None:
        self.client = client
        self.prefix = prefix

    def _key(self, delivery_id: int) -> str:
        return f"{self.prefix}{KEY}{delivery_id}"

    def mark(self, delivery_id: int, acceptance: Acceptance) -> None:
        """Note that the relay took ``delivery_id``; a failure is logged, never raised.

        Without the mark, a crash before the batch is written means one more
        copy, not a lost e-mail: the record still gets the outcome normally.
        """
        value = json.dumps(
            [acceptance.code, acceptance.text[:500], acceptance.at.timestamp(), acceptance.relay]
        )
        try:
            self.client.set(self._key(delivery_id), value, ex=TTL_SECONDS)
        except redis.RedisError as exc:
            log.warning("acceptance of delivery %s not marked: %s", delivery_id, exc)

    def find(self, delivery_ids: Iterable[int]) -> dict[int, Acceptance]:
        """The marks of those of ``delivery_ids`` a relay took; none when Redis cannot say."""
        wanted = list(delivery_ids)
        if not wanted:
            return {}
        try:
            values = self.client.mget([self._key(i) for i in wanted])
        except redis.RedisError as exc:
            log.warning("acceptance marks not read (%s); taken-over e-mails are sent again", exc)
            return {}
        found: dict[int, Acceptance] = {}
        for delivery_id, value in zip(wanted, values, strict=True):
            if value is None:
                continue
            try:
                code, text, stamp, relay = json.loads(value)
                found[delivery_id] = Acceptance(
                    int(code), str(text), datetime.fromtimestamp(float(stamp), UTC), relay
                )
            except (ValueError, TypeError):
                continue
        return found
