"""Lanes: a worker that serves every lane takes waiting password resets first."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from dispatcher import publish
from dispatcher.domain.kinds import EventType
from dispatcher.domain.samples import sample_event
from tests.support.documents import addresses_only
from tests.support.harness import wait_for
from tests.support.stack import running_stack

pytestmark = pytest.mark.integration


def _event(event_type: EventType, address: str) -> dict[str, object]:
    event = sample_event(event_type)
    event.update(
        event_id=f"lane-{uuid.uuid4().hex}", customer_group="LANES", contact={"email": address}
    )
    return event


def test_waiting_resets_go_before_the_rest_of_a_batch(tmp_path: Path) -> None:
    with running_stack("sqlite", tmp_path) as stack:
        stack.worker.stop()
        stack.settings.add_group("LANES", "Lanes")
        stack.settings.save_settings("LANES", addresses_only(), "test")
        # Every batch e-mail takes 0.4 s at the server, so the resets below
        # arrive while the single worker process is busy with one.
        stack.sink.set_faults(
            [{"match": "batch-", "stage": "rcpt", "action": "hang", "seconds": 0.4}]
        )
        for number in range(6):
            publish(_event(EventType.CUSTOMER_VALIDATED, f"batch-{number}@example.com"))
        stack.worker = stack.new_worker("--concurrency=1").start()
        wait_for(lambda: stack.deliveries(status="sending"), 30, "the batch to be under way")
        resets = [f"reset-{n}-{uuid.uuid4().hex[:6]}@example.com" for n in range(2)]
        for address in resets:
            publish(_event(EventType.PASSWORD_RESET, address))
        wait_for(lambda: len(stack.sink.messages()) >= 8, 60, "every e-mail to arrive")
        order = [
            rcpt
            for entry in sorted(stack.sink.messages(), key=lambda e: e["received_at"])
            for rcpt in entry["rcpt_tos"]
        ]
        first, second = order.index(resets[0]), order.index(resets[1])
        # Round robin between the queues would slip a batch e-mail in between.
        assert second == first + 1, order
        assert first <= 2, order
