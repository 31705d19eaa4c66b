"""Acceptance marks in a real Redis: written without waiting, found, and never raised."""

from __future__ import annotations

import logging
import os
import socket
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
import redis

from dispatcher.delivery.acceptance import Acceptance, AcceptanceMarks
from tests.conftest import require_redis
from tests.support.harness import wait_for

pytestmark = pytest.mark.redis
AT = datetime(2026, 12, 5, 9, 0, tzinfo=UTC)


@pytest.fixture
def redis_keys() -> Iterator[tuple[redis.Redis, str, AcceptanceMarks]]:
    """A client of the test Redis, a key prefix of this test's own, and marks under it."""
    require_redis()
    client = redis.Redis.from_url(os.environ["DISPATCHER_BROKER_URL"])
    prefix = f"marks-{uuid.uuid4().hex[:8]}:"
    marks = AcceptanceMarks(client, prefix)
    yield client, prefix, marks
    marks.close()
    keys = list(client.scan_iter(match=f"{prefix}*"))
    if keys:
        client.delete(*keys)
    client.close()


def test_every_mark_is_found_and_expires_within_a_day(
    redis_keys: tuple[redis.Redis, str, AcceptanceMarks],
) -> None:
    client, prefix, marks = redis_keys
    for number in range(1, 51):
        marks.mark(number, Acceptance(250, f"2.0.0 Ok {number}", AT, "primary"))
    marks.settle()
    found = AcceptanceMarks(client, prefix).find(range(1, 53))
    assert sorted(found) == list(range(1, 51))
    assert found[7] == Acceptance(250, "2.0.0 Ok 7", AT, "primary")
    assert 0 < client.ttl(f"{prefix}dispatcher:accepted:7") <= 86_400


def test_a_mark_reaches_redis_before_its_answer_is_read(
    redis_keys: tuple[redis.Redis, str, AcceptanceMarks],
) -> None:
    """What makes a kill harmless: the command is sent at once, only its answer waits."""
    client, prefix, marks = redis_keys
    marks.mark(1, Acceptance(250, "ok", AT))
    assert marks._unanswered == 1  # The answer is not read yet.
    wait_for(lambda: bool(client.exists(f"{prefix}dispatcher:accepted:1")), 5, "the mark")


def test_a_connection_redis_closed_is_replaced_and_the_mark_lands(
    redis_keys: tuple[redis.Redis, str, AcceptanceMarks],
) -> None:
    client, prefix, marks = redis_keys
    marks.mark(1, Acceptance(250, "ok", AT))
    marks.settle()
    # As a Redis restart would: the server drops the marks' connection.
    name = f"marks-{uuid.uuid4().hex[:6]}"
    marks._connection.send_command("CLIENT", "SETNAME", name)
    marks._connection.read_response()
    [entry] = [e for e in client.client_list() if e.get("name") == name]
    client.client_kill_filter(_id=entry["id"])
    marks.mark(2, Acceptance(250, "ok", AT))
    marks.settle()
    assert sorted(AcceptanceMarks(client, prefix).find([1, 2])) == [1, 2]


def test_an_unreachable_redis_is_logged_never_raised(caplog: pytest.LogCaptureFixture) -> None:
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    marks = AcceptanceMarks(redis.Redis(port=port, socket_connect_timeout=1), "x:")
    with caplog.at_level(logging.WARNING, logger="dispatcher.delivery"):
        marks.mark(9, Acceptance(250, "ok", AT))
        marks.settle()
    assert "acceptance of delivery 9 not marked" in caplog.text
    assert marks.find([9]) == {}
    marks.close()


def test_a_refusal_is_logged_when_its_answer_is_read_and_marking_goes_on(
    redis_keys: tuple[redis.Redis, str, AcceptanceMarks], caplog: pytest.LogCaptureFixture
) -> None:
    client, prefix, marks = redis_keys
    marks.mark(1, Acceptance(250, "ok", AT))
    marks.settle()
    # Redis refuses a command (a read-only replica would refuse every SET):
    # here one with too few arguments, standing in for delivery 3's mark.
    marks._connection.send_command("SET", f"{prefix}k")
    marks._unanswered = 3
    with caplog.at_level(logging.WARNING, logger="dispatcher.delivery"):
        marks.mark(4, Acceptance(250, "ok", AT))
        marks.settle()
    assert "acceptance of delivery 3 not marked" in caplog.text
    assert 4 in AcceptanceMarks(client, prefix).find([4])
