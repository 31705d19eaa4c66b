"""Single events taken as batches while a worker is busy (dispatcher.worker.batching).

A real worker with two processes and a sink that answers slowly: events
published one message each pile up while both processes send, and the next
free process takes them as one batch. Every event is still recorded and sent
exactly once, and each message is acknowledged only after its batch ran.
"""

from __future__ import annotations

import re
import urllib.request
import uuid
from collections import Counter
from pathlib import Path

import pytest

from dispatcher import publish
from dispatcher.domain.kinds import EventType
from dispatcher.domain.samples import sample_event
from tests.support.documents import addresses_only
from tests.support.harness import free_port, wait_for
from tests.support.stack import running_stack

pytestmark = pytest.mark.integration


def _reset(tag: str, number: int) -> dict[str, object]:
    event = sample_event(EventType.PASSWORD_RESET)
    event.update(
        event_id=f"{tag}-{number}",
        customer_group="BATCH",
        contact={"email": f"{tag}-{number}@example.com"},
    )
    return event


def _histogram(port: int) -> tuple[float, float]:
    """(count, sum) of the worker's dispatcher_event_batch_size."""
    url = f"http://127.0.0.1:{port}/metrics"
    with urllib.request.urlopen(url, timeout=5) as response:
        text = response.read().decode()
    found = dict(re.findall(r"^dispatcher_event_batch_size_(count|sum) (\S+)$", text, re.M))
    return float(found.get("count", 0)), float(found.get("sum", 0))


@pytest.mark.parametrize("kind", ["sqlite", "postgres"])
def test_events_waiting_for_a_busy_worker_go_as_batches_each_sent_once(
    kind: str, tmp_path: Path
) -> None:
    port = free_port()
    with running_stack(kind, tmp_path, DISPATCHER_WORKER_METRICS_PORT=str(port)) as stack:
        stack.settings.add_group("BATCH", "Batches")
        stack.settings.save_settings("BATCH", addresses_only(), "test")
        # Every e-mail takes 50 ms at the server: two processes are busy
        # while the rest of the events arrive.
        stack.sink.set_faults(
            [{"match": "slow-", "stage": "rcpt", "action": "hang", "seconds": 0.05}]
        )
        tag = f"slow-{uuid.uuid4().hex[:6]}"
        count = 60
        for number in range(count):
            publish(_reset(tag, number))
        wait_for(lambda: stack.sink.count() >= count, 90, "every reset to arrive")

        def counted() -> tuple[float, float] | None:
            histogram = _histogram(port)
            return histogram if histogram[1] >= count else None

        histogram = wait_for(counted, 20, "the batch metrics")
        assert histogram is not None
        batches, events = histogram
        assert events == count
        # Batches formed: fewer hand-overs than events (one each when idle).
        assert batches < count * 0.6, (batches, events)
        received = Counter(r for m in stack.sink.messages() for r in m["rcpt_tos"])
        assert set(received) == {f"{tag}-{n}@example.com" for n in range(count)}
        assert max(received.values()) == 1
        rows = stack.deliveries(group="BATCH")
        assert len(rows) == count
        assert {r.status for r in rows} == {"sent"}
        # Nothing is left unacknowledged: the worker holds no message.
        assert stack.worker.log().count("ERROR") == 0


def test_a_batch_size_of_one_takes_every_message_on_its_own(tmp_path: Path) -> None:
    port = free_port()
    with running_stack(
        "sqlite",
        tmp_path,
        DISPATCHER_WORKER_METRICS_PORT=str(port),
        DISPATCHER_EVENT_BATCH_SIZE="1",
    ) as stack:
        stack.settings.add_group("BATCH", "Batches")
        stack.settings.save_settings("BATCH", addresses_only(), "test")
        stack.sink.set_faults(
            [{"match": "one-", "stage": "rcpt", "action": "hang", "seconds": 0.05}]
        )
        tag = f"one-{uuid.uuid4().hex[:6]}"
        for number in range(10):
            publish(_reset(tag, number))
        wait_for(lambda: stack.sink.count() >= 10, 60, "every reset to arrive")
        assert _histogram(port) == (0.0, 0.0)
        assert {r.status for r in stack.deliveries(group="BATCH")} == {"sent"}
