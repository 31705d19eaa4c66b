"""A real worker takes every malformed queue item without stopping, and records each one."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
import redis

from dispatcher import publish
from dispatcher.broker import messages as task_messages
from dispatcher.broker.guard import decode_envelope
from dispatcher.domain.events import EventType
from dispatcher.domain.samples import sample_event
from tests.support.documents import full
from tests.support.harness import wait_for
from tests.support.malformed import HANDLED, corpus
from tests.support.stack import Stack, raw_push, running_stack

NOW = datetime(2026, 12, 4, 12, 0, tzinfo=UTC)
LANES = ("dispatcher.interactive", "dispatcher.bulk", "dispatcher.maintenance")


@pytest.mark.parametrize(("name", "raw"), corpus(), ids=[name for name, _ in corpus()])
def test_every_shape_is_an_envelope_kombu_can_read(name: str, raw: bytes) -> None:
    envelope = decode_envelope(raw, "dispatcher.bulk")
    properties = envelope["properties"]
    assert isinstance(properties["delivery_tag"], str | int)
    assert isinstance(properties["delivery_info"]["exchange"], str)
    assert properties["delivery_info"]["routing_key"]
    assert envelope.get("headers") is None or isinstance(envelope["headers"], dict)


def headers(**changes: object) -> dict[str, object]:
    return {"task": task_messages.HANDLE_EVENT, "id": "t-1", **changes}


@pytest.mark.parametrize(
    ("changes", "fragment"),
    [
        ({"task": 5}, "header 'task'"),
        ({"task": "celery.backend_cleanup"}, "unknown task"),
        ({"id": ""}, "header 'id'"),
        ({"timelimit": [1, -1]}, "timelimit"),
        ({"timelimit": [True, None]}, "timelimit"),
        ({"retries": -1}, "retries"),
        ({"eta": (NOW + timedelta(seconds=91)).isoformat()}, "more than 90 s ahead"),
        ({"expires": "never"}, "expires"),
        ({"stamps": []}, "stamps"),
        ({"ignore_result": "no"}, "ignore_result"),
    ],
)
def test_bad_headers_are_named(changes: dict[str, object], fragment: str) -> None:
    with pytest.raises(task_messages.BadMessage, match=fragment):
        task_messages.check_headers(headers(**changes), NOW, 90)


def test_good_headers_pass_and_name_the_task() -> None:
    good = headers(timelimit=[30, None], eta=(NOW + timedelta(seconds=60)).isoformat(), retries=3)
    assert task_messages.check_headers(good, NOW, 90) == task_messages.HANDLE_EVENT
    assert task_messages.check_body(task_messages.HANDLE_EVENT, [[{}], {}, None]) == ([{}], {})


def test_protocol_one_messages_are_checked_like_protocol_two() -> None:
    task_messages.check_protocol1(
        {"task": task_messages.HANDLE_EVENT, "id": "x", "args": [{}], "kwargs": {}}, NOW, 90
    )
    with pytest.raises(task_messages.BadMessage, match="exactly one positional"):
        task_messages.check_protocol1(
            {"task": task_messages.HANDLE_EVENT, "id": "x", "args": [], "kwargs": {}}, NOW, 90
        )


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    with running_stack("sqlite", tmp_path_factory.mktemp("malformed")) as s:
        s.settings.add_group("RETAIL", "Retail customers")
        s.settings.save_settings("RETAIL", full(), "test")
        yield s


@pytest.mark.integration
@pytest.mark.redis
def test_a_worker_records_every_malformed_message_on_every_lane_and_keeps_delivering(
    stack: Stack,
) -> None:
    before = len(stack.records.rejected(limit=10_000))
    shapes = corpus()
    for lane in LANES:
        for _, raw in shapes:
            raw_push(lane, raw)
    expected = len(LANES) * (len(shapes) - len(HANDLED))
    wait_for(
        lambda: len(stack.records.rejected(limit=10_000)) - before >= expected,
        90,
        f"{expected} malformed messages to be recorded as rejected",
        interval=0.2,
    )
    assert stack.worker.process is not None
    assert stack.worker.process.poll() is None
    assert "Unrecoverable error" not in stack.worker.log()
    # Every queue is empty and nothing waits unacknowledged: each item was taken.

    client = redis.Redis.from_url(os.environ["DISPATCHER_BROKER_URL"])
    prefix = os.environ["DISPATCHER_BROKER_PREFIX"]
    try:
        wait_for(
            lambda: (
                all(client.llen(f"{prefix}{lane}") == 0 for lane in LANES)
                and client.hlen(f"{prefix}unacked") == 0
            ),
            30,
            "the queues and the unacked set to empty",
        )
    finally:
        client.close()
    event = sample_event(EventType.PASSWORD_RESET)
    event.update(event_id=f"after-{uuid.uuid4().hex}", customer_group="RETAIL")
    publish(event)
    stack.wait_status(event["event_id"], {"sent"})
