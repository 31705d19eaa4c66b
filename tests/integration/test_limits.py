"""Abuse limits: per-recipient cooldown and per-group rate, on a real Redis."""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Iterator

import pytest
import redis

from dispatcher import publish
from dispatcher.broker.publisher import publish_many
from dispatcher.delivery.limits import Limits
from dispatcher.domain.kinds import EventType
from dispatcher.domain.samples import sample_event
from tests.conftest import require_redis
from tests.support.documents import full
from tests.support.harness import wait_for
from tests.support.stack import Stack, running_stack


@pytest.fixture
def client() -> Iterator[redis.Redis]:
    require_redis()
    connection = redis.Redis.from_url(os.environ["DISPATCHER_BROKER_URL"])
    yield connection
    connection.close()


def limits(client: redis.Redis, cooldown: int = 2, rate: int = 3) -> Limits:
    return Limits(client, f"t-{uuid.uuid4().hex[:8]}:", cooldown, 3600.0, rate)


def test_cooldown_counts_each_delivery_once_and_expires(client: redis.Redis) -> None:
    limiter = limits(client)
    now = 1_800_000_000.0
    assert limiter.cooldown("password.reset", "A@example.com", 1, now).allowed
    assert limiter.cooldown("password.reset", "a@example.com", 2, now + 1).allowed
    # A retried delivery is the same delivery: it does not count again.
    assert limiter.cooldown("password.reset", "a@example.com", 2, now + 2).allowed
    third = limiter.cooldown("password.reset", "a@example.com", 3, now + 3)
    assert not third.allowed
    assert third.reason == (
        "cooldown: already 2 password.reset e-mails to this address in 60 minutes"
    )
    assert third.retry_at == pytest.approx(now + 3600)
    # Other kinds and other addresses have their own budget.
    assert limiter.cooldown("username.forgotten", "a@example.com", 4, now + 3).allowed
    assert limiter.cooldown("password.reset", "b@example.com", 5, now + 3).allowed
    # An hour after the first, one slot is free again.
    assert limiter.cooldown("password.reset", "a@example.com", 6, now + 3601).allowed


def test_group_rate_defers_to_the_next_minute(client: redis.Redis) -> None:
    limiter = limits(client)
    now = 1_800_000_010.0
    assert [limiter.group_rate("G", now).allowed for _ in range(3)] == [True, True, True]
    held = limiter.group_rate("G", now)
    assert not held.allowed
    assert held.retry_at == 1_800_000_060.0
    assert limiter.group_rate("OTHER", now).allowed
    assert limiter.group_rate("G", now + 60).allowed


def test_limits_let_mail_through_when_redis_is_away() -> None:
    away = redis.Redis(host="127.0.0.1", port=1, socket_connect_timeout=0.5)
    limiter = Limits(away, "t:", 1, 3600.0, 1)
    assert limiter.cooldown("password.reset", "a@example.com", 1, 0.0).allowed
    assert limiter.cooldown("password.reset", "a@example.com", 2, 0.0).allowed
    assert limiter.group_rate("G", 0.0).allowed
    away.close()


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    with running_stack(
        "sqlite",
        tmp_path_factory.mktemp("limits"),
        DISPATCHER_COOLDOWN_LIMIT="2",
        DISPATCHER_GROUP_RATE_PER_MINUTE="3",
    ) as s:
        s.settings.add_group("RETAIL", "Retail customers")
        s.settings.save_settings("RETAIL", full(), "test")
        yield s


def event(event_type: EventType, address: str) -> dict[str, object]:
    item = sample_event(event_type)
    item.update(
        event_id=f"lim-{uuid.uuid4().hex[:10]}",
        customer_group="RETAIL",
        contact={"email": address},
    )
    return item


@pytest.mark.integration
def test_cooldown_suppresses_the_excess_with_its_reason(stack: Stack) -> None:
    address = f"hammer-{uuid.uuid4().hex[:6]}@example.com"
    events = [event(EventType.PASSWORD_RESET, address) for _ in range(3)]
    rows = []
    for item in events:
        publish(item)
        rows += stack.wait_status(str(item["event_id"]), {"sent", "suppressed"})
    assert [r.status for r in rows] == ["sent", "sent", "suppressed"]
    assert rows[2].last_text == (
        "cooldown: already 2 password.reset e-mails to this address in 60 minutes"
    )
    assert len(stack.sink.messages(address)) == 2


@pytest.mark.integration
def test_cooldown_holds_within_one_batch(stack: Stack) -> None:
    # publish_many sends the three as one task: their cooldowns are asked in
    # one round trip, in order, with the answers of asking one by one.
    address = f"batched-{uuid.uuid4().hex[:6]}@example.com"
    others = [event(EventType.PASSWORD_RESET, f"other-{uuid.uuid4().hex[:6]}@example.com")]
    events = [event(EventType.PASSWORD_RESET, address) for _ in range(3)] + others
    publish_many(events)
    rows = [stack.wait_status(str(item["event_id"]), {"sent", "suppressed"})[0] for item in events]
    assert sorted(r.status for r in rows[:3]) == ["sent", "sent", "suppressed"]
    assert rows[3].status == "sent"
    assert len(stack.sink.messages(address)) == 2


@pytest.mark.integration
def test_group_rate_defers_bulk_but_never_password_resets(stack: Stack) -> None:
    bulk = [event(EventType.CUSTOMER_VALIDATED, f"bulk{n}@example.com") for n in range(5)]
    # The limit counts per calendar minute; start well inside one.
    wait_for(lambda: time.time() % 60 < 45, 20, "the start of a fresh minute", interval=0.2)
    for item in bulk:
        publish(item)
    rows = [stack.wait_status(str(item["event_id"]), {"sent", "retrying"})[0] for item in bulk]
    assert sorted(r.status for r in rows) == ["retrying", "retrying", "sent", "sent", "sent"]
    deferred = [r for r in rows if r.status == "retrying"]
    assert all(r.last_text == "group rate limit: 3 e-mails per minute" for r in deferred)
    assert all(r.attempts == 0 for r in deferred)
    urgent = event(EventType.PASSWORD_RESET, f"urgent-{uuid.uuid4().hex[:6]}@example.com")
    publish(urgent)
    assert stack.wait_status(str(urgent["event_id"]), {"sent"})[0].status == "sent"
