"""The journal: accepted events that Redis lost on the way to a worker come back."""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import redis

from dispatcher import publish
from dispatcher.broker import publisher
from dispatcher.broker.journal import Entry, Journal, rescue
from dispatcher.broker.publisher import journal
from dispatcher.broker.queues import WEBHOOKS_ASKED, broker_state, queue_depth
from dispatcher.domain.kinds import WEBHOOKS_QUEUE, EventType, Lane, queue_for
from dispatcher.domain.samples import sample_event
from dispatcher.errors import BrokerUnavailable
from dispatcher.settings import get_settings
from tests.conftest import require_redis
from tests.support.documents import addresses_only
from tests.support.harness import wait_for
from tests.support.stack import running_stack

pytestmark = pytest.mark.integration

BULK = queue_for(Lane.BULK)
INTERACTIVE = queue_for(Lane.INTERACTIVE)


@pytest.fixture
def client() -> Iterator[Any]:
    require_redis()
    connection = redis.Redis.from_url(os.environ["DISPATCHER_BROKER_URL"])
    yield connection
    connection.close()


@pytest.fixture
def own(client: Any) -> Iterator[Journal]:
    prefix = f"journal-{uuid.uuid4().hex[:8]}:"
    yield Journal(client, prefix)
    for key in client.scan_iter(match=f"{prefix}*"):
        client.delete(key)


def entry(queue: str = BULK) -> Entry:
    event_id = f"j-{uuid.uuid4().hex[:10]}"
    return Entry(event_id, queue, {"event_id": event_id})


def test_recorded_events_are_forgotten_and_lost_ones_requeued_once_their_lane_is_idle(
    own: Journal,
) -> None:
    recorded, lost_bulk, lost_interactive, young = entry(), entry(), entry(INTERACTIVE), entry()
    own.file([recorded, lost_bulk, lost_interactive], now=1000.0)
    own.file([young], now=1095.0)
    busy = {BULK}
    result = rescue(
        own,
        lambda ids: {recorded.event_id} & set(ids),
        lambda queue: queue not in busy,
        now=1100.0,
        grace=60.0,
    )
    assert result.forgotten == 1
    assert [e.event_id for e in result.requeued] == [lost_interactive.event_id]
    assert result.requeued[0].event == {"event_id": lost_interactive.event_id}
    assert result.waiting == 1  # lost_bulk: its lane still has work queued
    assert own.size() == 3  # recorded one gone; young one not looked at yet
    # The requeued entry waits another grace period; the waiting one is due at once.
    again = rescue(own, lambda ids: set(), lambda queue: True, now=1101.0, grace=60.0)
    assert [e.event_id for e in again.requeued] == [lost_bulk.event_id]
    # Once the record holds them, they leave the journal.
    every = {lost_bulk.event_id, lost_interactive.event_id, young.event_id}
    done = rescue(own, lambda ids: every & set(ids), lambda queue: True, now=2000.0, grace=60.0)
    assert done.forgotten == 3
    assert own.size() == 0


def test_publish_files_each_event_before_enqueueing_it(client: Any) -> None:
    event = sample_event(EventType.PASSWORD_RESET)
    event.update(event_id=f"j-{uuid.uuid4().hex}", customer_group="NOWHERE")
    target = journal()
    assert target is not None
    before = queue_depth(client, target.prefix, INTERACTIVE)
    publish(event)
    assert client.hexists(target.entries_key, event["event_id"])
    assert client.zscore(target.index_key, event["event_id"]) is not None
    assert queue_depth(client, target.prefix, INTERACTIVE) == before + 1
    # Operators see it: dispatcher status, /metrics.

    state = broker_state(get_settings())
    assert state.journal >= 1
    assert state.oldest_journal_seconds is not None


def test_an_event_taken_off_the_queue_and_lost_is_still_delivered(tmp_path: Path) -> None:
    """What a worker killed between BRPOP and filing the message as unacked leaves."""
    with running_stack("sqlite", tmp_path, DISPATCHER_JOURNAL_GRACE_SECONDS="5") as stack:
        stack.settings.add_group("JOURNAL", "Journal")
        stack.settings.save_settings("JOURNAL", addresses_only(), "test")
        stack.worker.stop()
        address = f"lost-{uuid.uuid4().hex[:8]}@example.com"
        event = sample_event(EventType.PASSWORD_RESET)
        event.update(
            event_id=f"j-{uuid.uuid4().hex}", customer_group="JOURNAL", contact={"email": address}
        )
        publish(event)
        target = journal()
        assert target is not None
        # The message leaves the queue and reaches no worker.
        assert target.client.rpop(f"{target.prefix}{INTERACTIVE}") is not None
        assert queue_depth(target.client, target.prefix, INTERACTIVE) == 0
        stack.worker = stack.new_worker("-B", f"--schedule={tmp_path / 'beat-2'}").start()
        wait_for(lambda: stack.sink.messages(address), 60, "the lost event's e-mail")
        wait_for(lambda: target.size() == 0, 30, "the journal to let go of the event")
        assert len(stack.sink.messages(address)) == 1
        assert "accepted events that never reached a worker" in stack.worker.log()


def test_a_sweep_goes_through_the_journal_in_rounds_until_nothing_old_is_left(
    client: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = journal()
    assert target is not None
    for key in (target.entries_key, target.index_key):
        client.delete(key)
    old = [entry() for _ in range(5)]
    target.file(old, now=1.0)
    monkeypatch.setattr(publisher, "JOURNAL_ROUND", 2)
    result = publisher.rescue_journal(set, grace=60.0)
    assert result is not None
    assert result.forgotten == 5
    assert result.requeued == []
    assert target.size() == 0


def test_an_event_that_could_not_be_enqueued_leaves_no_journal_entry(
    client: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refuse(*args: object) -> None:
        raise BrokerUnavailable("refused for the test")

    monkeypatch.setattr(publisher, "_send_task", refuse)
    event = sample_event(EventType.PASSWORD_RESET)
    event.update(event_id=f"j-{uuid.uuid4().hex}", customer_group="NOWHERE")
    with pytest.raises(BrokerUnavailable, match="refused for the test"):
        publish(event)
    target = journal()
    assert target is not None
    assert not client.hexists(target.entries_key, event["event_id"])
    assert client.zscore(target.index_key, event["event_id"]) is None


def test_one_webhook_task_is_asked_for_at_a_time(client: Any) -> None:
    """Batches ask for a webhook task each; while one waits, no second is queued."""
    target = journal()
    assert target is not None
    client.delete(f"{target.prefix}{WEBHOOKS_ASKED}")
    before = queue_depth(client, target.prefix, WEBHOOKS_QUEUE)
    for _ in range(5):
        publisher.send_webhooks_soon()
    assert queue_depth(client, target.prefix, WEBHOOKS_QUEUE) == before + 1
    # Once the task has started, what becomes due needs (and gets) a task of its own.
    publisher.webhooks_round_started()
    publisher.send_webhooks_soon()
    publisher.send_webhooks_soon()
    assert queue_depth(client, target.prefix, WEBHOOKS_QUEUE) == before + 2
    # A request whose task was lost holds back others only for a while.
    assert 0 < client.ttl(f"{target.prefix}{WEBHOOKS_ASKED}") <= publisher.WEBHOOKS_ASK_SECONDS


def test_a_webhook_task_is_asked_for_when_redis_cannot_say_whether_one_waits(
    client: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = journal()
    assert target is not None
    client.delete(f"{target.prefix}{WEBHOOKS_ASKED}")
    before = queue_depth(client, target.prefix, WEBHOOKS_QUEUE)

    def unavailable(*_args: Any, **_kwargs: Any) -> None:
        raise redis.ConnectionError("the key could not be set")

    monkeypatch.setattr(target.client, "set", unavailable)
    publisher.send_webhooks_soon()
    publisher.send_webhooks_soon()
    # Unknown whether a task waits: each asks (a spare task finds nothing due).
    assert queue_depth(client, target.prefix, WEBHOOKS_QUEUE) == before + 2


def _newest_eta(client: Any, prefix: str, queue: str) -> str | None:
    raw = client.lindex(f"{prefix}{queue}", 0)
    assert raw is not None, "no message in the webhooks queue"
    eta: str | None = json.loads(raw)["headers"].get("eta")
    return eta


def test_outcomes_ask_for_a_webhook_task_that_gathers_for_a_second(client: Any) -> None:
    """New outcomes' task starts a second later, so the batches ending meanwhile share it."""
    target = journal()
    assert target is not None
    client.delete(f"{target.prefix}{WEBHOOKS_ASKED}")
    before = datetime.now(UTC)
    publisher.send_webhooks_soon()
    after = datetime.now(UTC)
    eta = _newest_eta(client, target.prefix, WEBHOOKS_QUEUE)
    assert eta is not None
    # Timed from the ask, so a slow machine between the ask and this check cannot fail it.
    gather = timedelta(seconds=publisher.WEBHOOKS_GATHER_SECONDS)
    assert before + gather <= datetime.fromisoformat(eta) <= after + gather
    # A round that ran out of time, or an operator's replay, asks for one now.
    publisher.webhooks_round_started()
    publisher.send_webhooks_soon(gather=0)
    assert _newest_eta(client, target.prefix, WEBHOOKS_QUEUE) is None
