"""Abuse limits shared by all workers, kept in Redis.

- A per-recipient cooldown for password-reset and forgotten-user-name e-mails:
  at most N per window to one address; the excess is suppressed, with the
  reason, so a script hammering "forgot password" cannot flood a mailbox.
- A per-group send rate for bulk e-mails: the excess waits for the next
  window. Interactive e-mails are counted but never held back by a batch.

Counts are atomic (a Lua script per decision). Each delivery is counted once,
by its id, so a retried or redelivered delivery does not use up the cooldown.
If Redis cannot be asked, the limits let the e-mail through: a missed
password reset is worse than one extra.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from dispatcher.broker.queues import redis_client

log = logging.getLogger(__name__)

# KEYS[1]: sorted set of delivery ids by time. ARGV: now, window, limit, member.
_COOLDOWN = """
local key, now, window, limit, member = KEYS[1], tonumber(ARGV[1]), tonumber(ARGV[2]),
    tonumber(ARGV[3]), ARGV[4]
redis.call('ZREMRANGEBYSCORE', key, '-inf', now - window)
if redis.call('ZSCORE', key, member) then
    return {1, 0}
end
if redis.call('ZCARD', key) >= limit then
    local oldest = redis.call('ZRANGE', key, 0, 0, 'WITHSCORES')
    return {0, tostring(tonumber(oldest[2]) + window)}
end
redis.call('ZADD', key, now, member)
redis.call('EXPIRE', key, math.ceil(window) + 1)
return {1, 0}
"""

# KEYS[1]: counter of the current window. ARGV: limit, ttl.
_RATE = """
local count = redis.call('INCR', KEYS[1])
if count == 1 then
    redis.call('EXPIRE', KEYS[1], tonumber(ARGV[2]))
end
if count > tonumber(ARGV[1]) then
    return 0
end
return 1
"""


@dataclass(frozen=True)
class Decision:
    allowed: bool
    reason: str | None = None
    retry_at: float | None = None  # Unix time when it may go


ALLOW = Decision(True)


class Limits:
    """Cooldowns and group rates against one Redis; all methods fail open."""

    def __init__(
        self,
        client: Any,
        prefix: str,
        cooldown_limit: int,
        cooldown_window: float,
        group_rate_per_minute: int,
    ) -> None:
        self.client = client
        self.prefix = f"{prefix}dispatcher:limits:"
        self.cooldown_limit = cooldown_limit
        self.cooldown_window = cooldown_window
        self.group_rate_per_minute = group_rate_per_minute
        self._cooldown = client.register_script(_COOLDOWN)
        self._rate = client.register_script(_RATE)

    def cooldown(self, kind: str, recipient: str, delivery_id: int, now: float) -> Decision:
        """May this e-mail go to ``recipient``, given the ones sent to it lately?"""
        return self.cooldowns([(kind, recipient, delivery_id)], now)[0]

    def cooldowns(self, requests: Sequence[tuple[str, str, int]], now: float) -> list[Decision]:
        """``cooldown`` for several e-mails (kind, recipient, delivery id) in one round trip.

        The scripts run in order, so the answers are those of asking one by one.
        """
        if self.cooldown_limit <= 0 or not requests:
            return [ALLOW] * len(requests)
        try:
            # A pipeline checks that the script is loaded first (one more
            # round trip), which pays from two e-mails on.
            pipe = self.client.pipeline(transaction=False) if len(requests) > 1 else None
            answers = []
            for kind, recipient, delivery_id in requests:
                # The address is hashed: Redis needs no copy of who gets mail.
                digest = hashlib.sha256(recipient.lower().encode()).hexdigest()[:32]
                answers.append(
                    self._cooldown(
                        keys=[f"{self.prefix}cooldown:{kind}:{digest}"],
                        args=[now, self.cooldown_window, self.cooldown_limit, str(delivery_id)],
                        client=pipe,
                    )
                )
            if pipe is not None:
                answers = pipe.execute()
        except Exception as exc:  # noqa: BLE001 - fail open, see the module docstring
            log.warning("cooldown not checked (%s); sending", exc)
            return [ALLOW] * len(requests)
        minutes = self.cooldown_window / 60
        return [
            ALLOW
            if int(allowed)
            else Decision(
                False,
                f"cooldown: already {self.cooldown_limit} {kind} e-mails to this address in "
                f"{minutes:g} minutes",
                float(until),
            )
            for (kind, _, _), (allowed, until) in zip(requests, answers, strict=True)
        ]

    def group_rate(self, group: str, now: float) -> Decision:
        """May one more bulk e-mail of ``group`` go in this minute?"""
        if self.group_rate_per_minute <= 0:
            return ALLOW
        window = int(now // 60)
        key = f"{self.prefix}rate:{group}:{window}"
        try:
            allowed = self._rate(keys=[key], args=[self.group_rate_per_minute, 120])
        except Exception as exc:  # noqa: BLE001 - fail open, see the module docstring
            log.warning("group rate not checked (%s); sending", exc)
            return ALLOW
        if int(allowed):
            return ALLOW
        return Decision(
            False,
            f"group rate limit: {self.group_rate_per_minute} e-mails per minute",
            float((window + 1) * 60),
        )


def limits_from_settings(settings: Any) -> Limits | None:
    """Limits on the broker's Redis, or None when the broker is not Redis."""

    try:
        client = redis_client(settings)
    except Exception:  # noqa: BLE001 - another broker: no shared limits
        return None
    return Limits(
        client,
        settings.broker_prefix,
        settings.cooldown_limit,
        settings.cooldown_window_seconds,
        settings.group_rate_per_minute,
    )
