"""Circuit breakers per relay: the state machine, and the same rules in memory and in Redis."""

from __future__ import annotations

import logging
import os
import random
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis

from dispatcher.smtp.breaker import (
    CLOSED,
    BreakerPolicy,
    BreakerRecord,
    BreakerState,
    BreakerStore,
    CircuitBreaker,
    Decision,
    MemoryBreakerStore,
    RedisBreakerStore,
    acquire,
    on_failure,
    on_success,
)
from tests.conftest import require_redis

POLICY = BreakerPolicy(failure_threshold=3, open_seconds=30, probe_lease_seconds=60)
REDIS_URL = os.environ["DISPATCHER_BROKER_URL"]


class Clock:
    def __init__(self, now: float = 1_750_000_000.25) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def flush(prefix: str) -> None:
    client = redis.Redis.from_url(REDIS_URL)
    try:
        keys = list(client.scan_iter(match=f"{prefix}*"))
        if keys:
            client.delete(*keys)
    finally:
        client.close()


@pytest.fixture
def redis_prefix() -> Iterator[str]:
    require_redis()
    prefix = f"test-breaker-{uuid.uuid4().hex[:10]}:"
    yield prefix
    flush(prefix)


@pytest.fixture
def redis_client(redis_prefix: str) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(REDIS_URL, socket_timeout=2)
    yield client
    client.close()


StoreFactory = Callable[[BreakerPolicy], BreakerStore]


@pytest.fixture(params=["memory", pytest.param("redis", marks=pytest.mark.redis)])
def make_store(request: pytest.FixtureRequest) -> StoreFactory:
    """Each scenario runs against both stores: the Lua script must follow the same rules."""
    if request.param == "memory":
        return MemoryBreakerStore
    client = request.getfixturevalue("redis_client")
    prefix = request.getfixturevalue("redis_prefix")
    return lambda policy: RedisBreakerStore(client, prefix, policy)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def breaker(make_store: StoreFactory, clock: Clock) -> CircuitBreaker:
    return CircuitBreaker(make_store(POLICY), clock)


def fail(breaker: CircuitBreaker, relay: str, times: int) -> BreakerState:
    state = BreakerState.CLOSED
    for _ in range(times):
        permit = breaker.permit(relay)
        assert permit is not None
        state = breaker.failed(permit)
    return state


# --- the state machine ---------------------------------------------------------


def test_the_states_have_the_metric_values() -> None:
    assert [(s.name, int(s)) for s in BreakerState] == [
        ("CLOSED", 0),
        ("HALF_OPEN", 1),
        ("OPEN", 2),
    ]


def test_the_pure_state_machine() -> None:
    record, now = CLOSED, 100.0
    for _ in range(2):
        record = on_failure(record, POLICY, now, "a")
    assert record == BreakerRecord(BreakerState.CLOSED, 2, 0.0)
    assert on_success(record, "a") is CLOSED

    record = on_failure(record, POLICY, now, "a")
    assert record == BreakerRecord(BreakerState.OPEN, 3, 100.0)
    assert acquire(record, POLICY, 129.9, "b") == (Decision.SKIP, record)

    decision, probing = acquire(record, POLICY, 130.0, "b")
    assert decision is Decision.PROBE
    assert probing == BreakerRecord(BreakerState.HALF_OPEN, 3, 130.0, "b")
    assert acquire(probing, POLICY, 131.0, "c") == (Decision.SKIP, probing)
    assert on_success(probing, "c") is probing  # not the probe: ignored
    assert on_failure(probing, POLICY, 131.0, "c") is probing
    assert on_failure(probing, POLICY, 132.0, "b") == BreakerRecord(BreakerState.OPEN, 3, 132.0)
    assert on_success(probing, "b") is CLOSED


def test_the_policy_is_checked() -> None:
    with pytest.raises(ValueError, match="failure_threshold"):
        BreakerPolicy(failure_threshold=0)
    with pytest.raises(ValueError, match="above 0"):
        BreakerPolicy(open_seconds=0)
    with pytest.raises(ValueError, match="key_ttl_seconds must exceed"):
        BreakerPolicy(open_seconds=30, probe_lease_seconds=60, key_ttl_seconds=90)


# --- scenarios, on each store ---------------------------------------------------------


def test_a_relay_opens_after_three_failures_in_a_row(breaker: CircuitBreaker) -> None:
    assert fail(breaker, "primary", 2) is BreakerState.CLOSED
    assert breaker.state("primary") is BreakerState.CLOSED
    assert fail(breaker, "primary", 1) is BreakerState.OPEN

    assert breaker.permit("primary") is None
    assert breaker.state("primary") is BreakerState.OPEN
    assert breaker.permit("backup") is not None  # each relay has its own breaker
    assert breaker.state("backup") is BreakerState.CLOSED


def test_a_success_resets_the_count(breaker: CircuitBreaker) -> None:
    fail(breaker, "primary", 2)
    permit = breaker.permit("primary")
    assert permit is not None
    assert breaker.succeeded(permit) is BreakerState.CLOSED

    assert fail(breaker, "primary", 2) is BreakerState.CLOSED
    assert fail(breaker, "primary", 1) is BreakerState.OPEN


def test_after_the_pause_exactly_one_caller_probes(breaker: CircuitBreaker, clock: Clock) -> None:
    fail(breaker, "primary", 3)
    clock.advance(29.9)
    assert breaker.permit("primary") is None

    clock.advance(0.1)
    probe = breaker.permit("primary")
    assert probe is not None
    assert probe.probe
    assert breaker.state("primary") is BreakerState.HALF_OPEN
    assert [breaker.permit("primary") for _ in range(5)] == [None] * 5

    assert breaker.succeeded(probe) is BreakerState.CLOSED
    allowed = breaker.permit("primary")
    assert allowed is not None
    assert not allowed.probe


def test_a_failed_probe_opens_the_relay_for_another_pause(
    breaker: CircuitBreaker, clock: Clock
) -> None:
    fail(breaker, "primary", 3)
    clock.advance(30)
    probe = breaker.permit("primary")
    assert probe is not None

    clock.advance(5)
    assert breaker.failed(probe) is BreakerState.OPEN
    clock.advance(29)
    assert breaker.permit("primary") is None
    clock.advance(1)
    again = breaker.permit("primary")
    assert again is not None
    assert again.probe


def test_a_probe_that_never_reports_is_given_up_after_its_lease(
    breaker: CircuitBreaker, clock: Clock
) -> None:
    fail(breaker, "primary", 3)
    clock.advance(30)
    lost = breaker.permit("primary")  # its process dies before reporting
    assert lost is not None

    clock.advance(59)
    assert breaker.permit("primary") is None
    clock.advance(1)
    second = breaker.permit("primary")
    assert second is not None
    assert second.probe

    # The lost probe's late word no longer counts; the current probe's does.
    assert breaker.succeeded(lost) is BreakerState.HALF_OPEN
    assert breaker.failed(lost) is BreakerState.HALF_OPEN
    assert breaker.succeeded(second) is BreakerState.CLOSED


def test_late_outcomes_of_earlier_permits_do_not_move_an_open_relay(
    breaker: CircuitBreaker, clock: Clock
) -> None:
    early = [breaker.permit("primary") for _ in range(5)]
    assert all(early)
    for permit in early[:3]:
        breaker.failed(permit)  # type: ignore[arg-type]
    assert breaker.state("primary") is BreakerState.OPEN

    assert breaker.failed(early[3]) is BreakerState.OPEN  # type: ignore[arg-type]
    assert breaker.succeeded(early[4]) is BreakerState.OPEN  # type: ignore[arg-type]
    clock.advance(30)
    assert breaker.permit("primary") is not None  # the pause was not extended


def test_stores_follow_the_same_rules_in_a_random_walk(make_store: StoreFactory) -> None:
    """A thousand random steps on three relays: the store answers as the pure rules do."""
    rng = random.Random(20250301)
    policy = BreakerPolicy(failure_threshold=2, open_seconds=10, probe_lease_seconds=15)
    store = make_store(policy)
    model = MemoryBreakerStore(policy)
    now = 1_750_000_000.0
    tokens = ["t0", "t1", "t2", "t3"]
    for step in range(1000):
        now += rng.choice([0.0, 0.5, 3.0, 7.25, 12.0])
        relay = rng.choice(["a", "b", "c"])
        token = rng.choice(tokens)
        operation = rng.choice(["acquire", "acquire", "success", "failure", "state"])
        if operation == "state":
            got, expected = store.state(relay, now), model.state(relay, now)
        else:
            got = getattr(store, operation)(relay, now, token)
            expected = getattr(model, operation)(relay, now, token)
        assert got == expected, (step, relay, operation, token)


# --- Redis ----------------------------------------------------------------------------------


@pytest.mark.redis
def test_redis_keys_carry_the_prefix_and_expire(
    redis_client: redis.Redis, redis_prefix: str, clock: Clock
) -> None:
    store = RedisBreakerStore(redis_client, redis_prefix, POLICY)
    breaker = CircuitBreaker(store, clock)

    fail(breaker, "primary", 1)
    key = f"{redis_prefix}dispatcher:breaker:primary"
    assert store.key("primary") == key
    assert redis_client.hget(key, "failures") == b"1"
    assert 3_590_000 < redis_client.pttl(key) <= 3_600_000

    fail(breaker, "primary", 2)
    assert redis_client.hget(key, "state") == b"2"
    assert 3_590_000 < redis_client.pttl(key) <= 3_600_000

    clock.advance(30)
    probe = breaker.permit("primary")
    assert probe is not None
    breaker.succeeded(probe)
    assert redis_client.exists(key) == 0  # a closed breaker without failures has no key


@pytest.mark.redis
def test_two_processes_share_one_breaker(
    redis_client: redis.Redis, redis_prefix: str, clock: Clock
) -> None:
    one = CircuitBreaker(RedisBreakerStore(redis_client, redis_prefix, POLICY), clock)
    other_client = redis.Redis.from_url(REDIS_URL)
    try:
        two = CircuitBreaker(RedisBreakerStore(other_client, redis_prefix, POLICY), clock)
        fail(one, "primary", 2)
        fail(two, "primary", 1)
        assert one.permit("primary") is None
        assert two.state("primary") is BreakerState.OPEN
    finally:
        other_client.close()


# Each contender is a separate Python process with its own connection; all
# ask at the same instant (a shared start time, after connecting).
_CONTENDER = """
import sys, time, redis
from dispatcher.smtp.breaker import BreakerPolicy, CircuitBreaker, RedisBreakerStore
url, prefix, now, start_at = sys.argv[1], sys.argv[2], float(sys.argv[3]), float(sys.argv[4])
client = redis.Redis.from_url(url)
policy = BreakerPolicy(failure_threshold=3, open_seconds=30, probe_lease_seconds=60)
breaker = CircuitBreaker(RedisBreakerStore(client, prefix, policy), lambda: now)
breaker.state("primary")
late = time.time() > start_at
while time.time() < start_at:
    time.sleep(0.0005)
permit = breaker.permit("primary")
print("probe" if permit and permit.probe else "allow" if permit else "skip", late)
"""


@pytest.mark.redis
def test_of_many_processes_asking_at_once_exactly_one_probes(
    redis_client: redis.Redis, redis_prefix: str, clock: Clock
) -> None:
    breaker = CircuitBreaker(RedisBreakerStore(redis_client, redis_prefix, POLICY), clock)
    fail(breaker, "primary", 3)
    start_at = time.time() + 2.0
    root = Path(__file__).resolve().parents[2]
    contenders = [
        subprocess.Popen(
            [sys.executable, "-c", _CONTENDER, REDIS_URL, redis_prefix, str(clock() + 30),
             str(start_at)],
            cwd=root,
            env={**os.environ, "PYTHONPATH": str(root)},
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(8)
    ]  # fmt: skip
    answers = [process.communicate(timeout=60)[0].split() for process in contenders]

    assert all(process.returncode == 0 for process in contenders)
    assert sorted(answer[0] for answer in answers) == ["probe"] + ["skip"] * 7
    assert breaker.state("primary") is BreakerState.HALF_OPEN


class _BrokenScript:
    def __call__(self, *args: object, **kwargs: object) -> object:
        raise redis.ConnectionError("Connection refused")


class _BrokenClient:
    def register_script(self, script: str) -> _BrokenScript:
        return _BrokenScript()


def test_without_redis_every_relay_is_tried_and_that_is_logged_once(
    caplog: pytest.LogCaptureFixture, clock: Clock
) -> None:
    breaker = CircuitBreaker(RedisBreakerStore(_BrokenClient(), "x:", POLICY), clock)
    caplog.set_level(logging.INFO, logger="dispatcher.smtp.breaker")

    for _ in range(5):
        permit = breaker.permit("primary")
        assert permit is not None
        assert breaker.failed(permit) is BreakerState.CLOSED
    assert breaker.state("primary") is BreakerState.CLOSED

    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert warnings == [
        "relay breakers not reachable in Redis (Connection refused); trying every relay"
    ]
