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

import contextlib
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
    """Acceptance marks in the broker's Redis, one key per delivery, expiring.

    A mark goes out on a connection of its own without waiting for Redis's
    answer, which is read when the next mark goes out (or by ``settle``).
    Waiting for it had cost a round trip and a tenth of a worker's CPU per
    e-mail. The mark is still written before the next e-mail goes out: its
    bytes are in the socket, which the kernel delivers even if this process is
    killed next. (The answer to the mark before is read first, so no unread
    answer can make the kernel reset the connection instead.)
    """

    def __init__(self, client: Any, prefix: str) -> None:
        self.client = client
        self.prefix = prefix
        self._connection: Any = None
        # The delivery whose mark's answer is still to be read, if any.
        self._unanswered: int | None = None

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
        self.settle()
        # Twice: a connection Redis closed meanwhile (a restart) fails once.
        for attempt in (1, 2):
            try:
                if self._connection is not None and self._connection.can_read(timeout=0):
                    # Nothing is owed to us: Redis closed the connection (a restart).
                    self._drop()
                if self._connection is None:
                    self._connection = self.client.connection_pool.make_connection()
                self._connection.send_command(
                    "SET", self._key(delivery_id), value, "EX", TTL_SECONDS
                )
            except redis.RedisError as exc:
                self._drop()
                if attempt == 2:
                    log.warning("acceptance of delivery %s not marked: %s", delivery_id, exc)
            else:
                self._unanswered = delivery_id
                return

    def settle(self) -> None:
        """Read the answer to the last mark, if it is still to be read; log a refusal."""
        if self._unanswered is None or self._connection is None:
            return
        delivery_id, self._unanswered = self._unanswered, None
        try:
            self._connection.read_response()
        except redis.ResponseError as exc:
            log.warning("acceptance of delivery %s not marked: %s", delivery_id, exc)
        except redis.RedisError as exc:
            self._drop()
            log.warning("acceptance of delivery %s may not be marked: %s", delivery_id, exc)

    def close(self) -> None:
        self.settle()
        self._drop()

    def _drop(self) -> None:
        if self._connection is not None:
            with contextlib.suppress(redis.RedisError, OSError):
                self._connection.disconnect()
        self._connection = None
        self._unanswered = None

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
