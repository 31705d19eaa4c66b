"""A circuit breaker per relay (CONTRACT §9: failover), shared by every worker process.

A relay that failed ``failure_threshold`` times in a row (connection refused,
timeout, TLS, 421: the caller decides what counts) is *open*: it is skipped
for ``open_seconds``. Then it is *half-open*: exactly one caller, in whichever
process, gets a permit to probe it with a real e-mail while everybody else
still skips it. The probe's success closes the breaker; its failure opens it
for another pause. A probe that never reports (its process died) is given up
after ``probe_lease_seconds`` and the next caller probes instead.

States for metrics: 0 closed, 1 half-open, 2 open (``BreakerState``).

The rules are a pure state machine (``acquire``, ``on_success``,
``on_failure`` over a ``BreakerRecord``); a ``BreakerStore`` applies them
atomically. ``MemoryBreakerStore`` serves one process and the tests;
``RedisBreakerStore`` runs the same rules as one Lua script per step, so all
workers see one breaker per relay. Redis keys expire (``key_ttl_seconds`` after
the last change), so the breakers of relays no longer used vanish. When Redis
cannot be asked, the Redis store lets every e-mail try the relay (fail open):
skipping a healthy relay would be worse than trying a broken one.

Outcomes that arrive late are ignored: a failure or success reported for a
permit granted before the breaker opened does not move an open or half-open
breaker, and only the probing caller's own outcome ends a half-open state.
The time comes from the caller's clock (``clock``, Unix seconds), so the
workers' clocks should agree to within a few seconds (NTP).
"""

from __future__ import annotations

import logging
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from enum import IntEnum
from typing import Any, Protocol

log = logging.getLogger(__name__)


class BreakerState(IntEnum):
    """A relay's breaker; the values are what the metrics show."""

    CLOSED = 0
    HALF_OPEN = 1
    OPEN = 2


class Decision(IntEnum):
    """May this caller use the relay now?"""

    SKIP = 0  # open, or another caller is probing: use the next relay
    ALLOW = 1  # closed: go ahead
    PROBE = 2  # half-open and this caller is the one probe


@dataclass(frozen=True)
class BreakerPolicy:
    failure_threshold: int = 3
    open_seconds: float = 30.0
    probe_lease_seconds: float = 60.0
    key_ttl_seconds: float = 3600.0

    def __post_init__(self) -> None:
        if self.failure_threshold < 1:
            raise ValueError("failure_threshold must be at least 1")
        if self.open_seconds <= 0 or self.probe_lease_seconds <= 0:
            raise ValueError("open_seconds and probe_lease_seconds must be above 0")
        if self.key_ttl_seconds <= self.open_seconds + self.probe_lease_seconds:
            raise ValueError(
                "key_ttl_seconds must exceed open_seconds + probe_lease_seconds, "
                "or an open breaker could expire before its probe"
            )


@dataclass(frozen=True)
class BreakerRecord:
    """One relay's breaker as stored."""

    state: BreakerState = BreakerState.CLOSED
    failures: int = 0  # consecutive failures
    since: float = 0.0  # when it opened, or when the current probe began
    probe: str = ""  # the probing caller's token while half-open


CLOSED = BreakerRecord()


# --- the state machine (RedisBreakerStore's Lua script mirrors it) ---------------


def acquire(
    record: BreakerRecord, policy: BreakerPolicy, now: float, token: str
) -> tuple[Decision, BreakerRecord]:
    """Whether a caller may use the relay, and the record afterwards."""
    if record.state is BreakerState.CLOSED:
        return Decision.ALLOW, record
    waited = now - record.since
    if (record.state is BreakerState.OPEN and waited >= policy.open_seconds) or (
        record.state is BreakerState.HALF_OPEN and waited >= policy.probe_lease_seconds
    ):
        return Decision.PROBE, replace(record, state=BreakerState.HALF_OPEN, since=now, probe=token)
    return Decision.SKIP, record


def on_success(record: BreakerRecord, token: str) -> BreakerRecord:
    if record.state is BreakerState.CLOSED or (
        record.state is BreakerState.HALF_OPEN and record.probe == token
    ):
        return CLOSED
    return record  # a late report: the breaker opened after that permit


def on_failure(
    record: BreakerRecord, policy: BreakerPolicy, now: float, token: str
) -> BreakerRecord:
    if record.state is BreakerState.CLOSED:
        failures = record.failures + 1
        if failures >= policy.failure_threshold:
            return BreakerRecord(BreakerState.OPEN, failures, now)
        return replace(record, failures=failures)
    if record.state is BreakerState.HALF_OPEN and record.probe == token:
        return BreakerRecord(BreakerState.OPEN, record.failures, now)
    return record


# --- stores -----------------------------------------------------------------


class BreakerStore(Protocol):
    """Applies the state machine atomically; each step returns the state after it."""

    policy: BreakerPolicy

    def acquire(self, relay: str, now: float, token: str) -> tuple[Decision, BreakerState]: ...

    def success(self, relay: str, now: float, token: str) -> BreakerState: ...

    def failure(self, relay: str, now: float, token: str) -> BreakerState: ...

    def state(self, relay: str, now: float) -> BreakerState: ...


class MemoryBreakerStore:
    """Breakers in this process only (tests, a single process); thread-safe."""

    def __init__(self, policy: BreakerPolicy | None = None) -> None:
        self.policy = policy or BreakerPolicy()
        self._records: dict[str, tuple[BreakerRecord, float]] = {}
        self._lock = threading.Lock()

    def _get(self, relay: str, now: float) -> BreakerRecord:
        record, expires = self._records.get(relay, (CLOSED, 0.0))
        if record is not CLOSED and now >= expires:  # as Redis lets the key expire
            del self._records[relay]
            return CLOSED
        return record

    def _put(self, relay: str, record: BreakerRecord, now: float) -> None:
        if record == CLOSED:
            self._records.pop(relay, None)
        else:
            self._records[relay] = (record, now + self.policy.key_ttl_seconds)

    def acquire(self, relay: str, now: float, token: str) -> tuple[Decision, BreakerState]:
        with self._lock:
            before = self._get(relay, now)
            decision, after = acquire(before, self.policy, now, token)
            if after is not before:
                self._put(relay, after, now)
            return decision, after.state

    def success(self, relay: str, now: float, token: str) -> BreakerState:
        with self._lock:
            before = self._get(relay, now)
            after = on_success(before, token)
            if after is not before:
                self._put(relay, after, now)
            return after.state

    def failure(self, relay: str, now: float, token: str) -> BreakerState:
        with self._lock:
            before = self._get(relay, now)
            after = on_failure(before, self.policy, now, token)
            if after is not before:
                self._put(relay, after, now)
            return after.state

    def state(self, relay: str, now: float) -> BreakerState:
        with self._lock:
            return self._get(relay, now).state


# KEYS[1]: the relay's hash {state, failures, since, probe}.
# ARGV: operation, now, token, failure_threshold, open_seconds, probe_lease_seconds, ttl_ms.
# The same rules as acquire/on_success/on_failure above; a closed breaker
# without failures has no key.
_SCRIPT = """
local key, op, now, token = KEYS[1], ARGV[1], tonumber(ARGV[2]), ARGV[3]
local threshold, pause, lease, ttl =
    tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6]), tonumber(ARGV[7])
local f = redis.call('HMGET', key, 'state', 'failures', 'since', 'probe')
local state, failures, since, probe =
    tonumber(f[1]) or 0, tonumber(f[2]) or 0, tonumber(f[3]) or 0, f[4] or ''

local function save(new_state, new_failures, new_since, new_probe)
    redis.call('HSET', key, 'state', new_state, 'failures', new_failures,
               'since', new_since, 'probe', new_probe)
    redis.call('PEXPIRE', key, ttl)
    return new_state
end

if op == 'acquire' then
    if state == 0 then
        return {1, 0}
    end
    if (state == 2 and now - since >= pause) or (state == 1 and now - since >= lease) then
        save(1, failures, ARGV[2], token)
        return {2, 1}
    end
    return {0, state}
elseif op == 'success' then
    if (state == 0 and failures > 0) or (state == 1 and probe == token) then
        redis.call('DEL', key)
        return 0
    end
    return state
elseif op == 'failure' then
    if state == 0 then
        failures = failures + 1
        if failures >= threshold then
            return save(2, failures, ARGV[2], '')
        end
        return save(0, failures, f[3] or 0, '')
    end
    if state == 1 and probe == token then
        return save(2, failures, ARGV[2], '')
    end
    return state
elseif op == 'state' then
    return state
end
return redis.error_reply('unknown breaker operation: ' .. op)
"""


class _ScriptingClient(Protocol):
    def register_script(self, script: str) -> Callable[..., Any]: ...


class RedisBreakerStore:
    """Breakers in Redis, one hash per relay, shared by every worker process.

    ``client`` is a redis-py client (``redis.Redis``); keys are
    ``{prefix}dispatcher:breaker:{relay}``, ``prefix`` being the installation's
    (``DISPATCHER_BROKER_PREFIX``). Every step is one Lua script, atomic in
    Redis, so of all processes asking at once exactly one gets the probe.
    If Redis fails, every step answers "closed" and the relay is tried.
    """

    def __init__(
        self, client: _ScriptingClient, prefix: str = "", policy: BreakerPolicy | None = None
    ) -> None:
        self.policy = policy or BreakerPolicy()
        self.prefix = f"{prefix}dispatcher:breaker:"
        self._script = client.register_script(_SCRIPT)
        self._failing = False

    def key(self, relay: str) -> str:
        return f"{self.prefix}{relay}"

    def _run(self, operation: str, relay: str, now: float, token: str) -> Any:
        policy = self.policy
        try:
            result = self._script(
                keys=[self.key(relay)],
                args=[
                    operation,
                    repr(float(now)),
                    token,
                    policy.failure_threshold,
                    repr(float(policy.open_seconds)),
                    repr(float(policy.probe_lease_seconds)),
                    max(1, round(policy.key_ttl_seconds * 1000)),
                ],
            )
        except Exception as exc:  # noqa: BLE001 - fail open, see the module docstring
            if not self._failing:
                self._failing = True
                log.warning("relay breakers not reachable in Redis (%s); trying every relay", exc)
            return None
        if self._failing:
            self._failing = False
            log.info("relay breakers reachable in Redis again")
        return result

    def acquire(self, relay: str, now: float, token: str) -> tuple[Decision, BreakerState]:
        result = self._run("acquire", relay, now, token)
        if result is None:
            return Decision.ALLOW, BreakerState.CLOSED
        return Decision(int(result[0])), BreakerState(int(result[1]))

    def success(self, relay: str, now: float, token: str) -> BreakerState:
        result = self._run("success", relay, now, token)
        return BreakerState.CLOSED if result is None else BreakerState(int(result))

    def failure(self, relay: str, now: float, token: str) -> BreakerState:
        result = self._run("failure", relay, now, token)
        return BreakerState.CLOSED if result is None else BreakerState(int(result))

    def state(self, relay: str, now: float) -> BreakerState:
        result = self._run("state", relay, now, "")
        return BreakerState.CLOSED if result is None else BreakerState(int(result))


# --- what the sending code uses -----------------------------------------------


@dataclass(frozen=True)
class Permit:
    """Leave to use a relay for one attempt; report its outcome with it."""

    relay: str
    probe: bool  # this attempt decides whether a half-open relay closes again
    token: str


class CircuitBreaker:
    """Per-relay breakers over a store, on an injectable clock (Unix seconds).

    ::

        permit = breaker.permit(relay.name)
        if permit is None:
            ...  # skip this relay, try the route's next one
        try:
            send(...)
        except ConnectionTrouble:
            breaker.failed(permit)
        else:
            breaker.succeeded(permit)

    Report every permit's outcome, a probe's above all: an unreported probe
    holds the relay half-open until ``probe_lease_seconds`` pass. A 5xx reply
    to a recipient is the recipient's answer, and a success for the relay.
    """

    def __init__(self, store: BreakerStore, clock: Callable[[], float] = time.time) -> None:
        self.store = store
        self.clock = clock

    def permit(self, relay: str) -> Permit | None:
        """A permit, or None when the relay is to be skipped now."""
        token = secrets.token_hex(8)
        decision, _ = self.store.acquire(relay, self.clock(), token)
        if decision is Decision.SKIP:
            return None
        return Permit(relay, decision is Decision.PROBE, token)

    def succeeded(self, permit: Permit) -> BreakerState:
        return self.store.success(permit.relay, self.clock(), permit.token)

    def failed(self, permit: Permit) -> BreakerState:
        return self.store.failure(permit.relay, self.clock(), permit.token)

    def state(self, relay: str) -> BreakerState:
        """For metrics: 0 closed, 1 half-open, 2 open."""
        return self.store.state(relay, self.clock())
