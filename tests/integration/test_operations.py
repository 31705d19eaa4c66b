"""Operations: retention purge, worker check, JSON logs."""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine, update

from dispatcher import publish
from dispatcher.delivery.models import Delivery, EventRecord
from dispatcher.delivery.record import DeliveryRecords
from dispatcher.delivery.views import NewDelivery
from dispatcher.domain.kinds import EventType
from dispatcher.domain.samples import sample_event
from dispatcher.ops import logs
from tests.support.cli import run
from tests.support.documents import full
from tests.support.stack import Stack, running_stack


def record(
    records: DeliveryRecords, event_id: str, status: str, age_days: float, engine: Engine
) -> None:
    event = sample_event(EventType.PASSWORD_RESET)
    event.update(event_id=event_id, customer_group="G")
    then = datetime.now(UTC) - timedelta(days=age_days)
    records.record_accepted(
        event,
        "interactive",
        [
            NewDelivery(
                "password.reset", "a@example.com", None, None, f"<{event_id}@x>", "interactive"
            )
        ],
        1,
        then,
    )
    with engine.begin() as connection:
        connection.execute(
            update(Delivery)
            .where(Delivery.event_id == event_id)
            .values(status=status, updated_at=then)
        )
        connection.execute(
            update(EventRecord).where(EventRecord.event_id == event_id).values(received_at=then)
        )


def test_purge_deletes_only_old_finished_records(engine: Engine) -> None:
    records = DeliveryRecords(engine)
    record(records, "old-sent", "sent", 40, engine)
    record(records, "old-dead", "dead", 40, engine)
    record(records, "old-retrying", "retrying", 40, engine)
    record(records, "new-sent", "sent", 1, engine)
    records.record_rejected("bad", "reason", {"x": 1}, datetime.now(UTC) - timedelta(days=40))
    cutoff = datetime.now(UTC) - timedelta(days=30)
    assert records.purge(cutoff, dry_run=True) == {"deliveries": 2, "rejected": 1, "events": 2}
    assert len(records.deliveries()) == 4
    assert records.purge(cutoff) == {"deliveries": 2, "rejected": 1, "events": 2}
    assert sorted(d.event_id for d in records.deliveries()) == ["new-sent", "old-retrying"]
    assert records.get_event("old-sent") is None
    assert records.get_event("old-retrying") is not None
    assert records.rejected() == []


def test_json_log_lines_carry_the_step_fields() -> None:
    logger = logging.getLogger(f"test.{uuid.uuid4().hex}")
    records: list[str] = []

    class Capture(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(self.format(record))

    handler = Capture()
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logs.use_json(logger)
    logs.step(
        logger,
        logging.INFO,
        "delivery sent",
        event_id="e1",
        delivery_id=7,
        group="G",
        kind="password.reset",
        smtp_code=250,
    )
    data = json.loads(records[0])
    assert {
        k: data[k] for k in ("step", "event_id", "delivery_id", "group", "kind", "smtp_code")
    } == {
        "step": "delivery sent",
        "event_id": "e1",
        "delivery_id": 7,
        "group": "G",
        "kind": "password.reset",
        "smtp_code": 250,
    }
    assert (
        data["message"]
        == "delivery sent event_id=e1 delivery_id=7 group=G kind=password.reset smtp_code=250"
    )


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    with running_stack("sqlite", tmp_path_factory.mktemp("ops"), DISPATCHER_LOG_FORMAT="json") as s:
        s.settings.add_group("RETAIL", "Retail customers")
        s.settings.save_settings("RETAIL", full(), "test")
        yield s


@pytest.mark.integration
def test_worker_logs_are_json_without_secrets_or_bodies(stack: Stack) -> None:
    event = sample_event(EventType.PASSWORD_RESET)
    event.update(
        event_id=f"log-{uuid.uuid4().hex[:8]}",
        customer_group="RETAIL",
        reset_url="https://portal.example.com/reset?token=SECRET-TOKEN-123",
    )
    publish(event)
    stack.wait_status(event["event_id"], {"sent"})
    lines = [json.loads(line) for line in stack.worker.log().splitlines() if line.startswith("{")]
    sent = [line for line in lines if line.get("step") == "delivery sent"]
    assert any(line["event_id"] == event["event_id"] and line["smtp_code"] == 250 for line in sent)
    assert "SECRET-TOKEN-123" not in stack.worker.log()


@pytest.mark.integration
def test_worker_check_sees_a_healthy_a_stalled_and_no_worker(stack: Stack) -> None:
    result = run("worker-check", "--window", "1", cwd=stack.directory, env=stack.env)
    assert result.code == 0, result.out + result.err
    assert result.out.startswith("ok: ")
    # Freeze the pool processes: the worker still answers pings but takes nothing.
    children = subprocess.run(
        ["pgrep", "-P", str(stack.worker.process.pid)],  # type: ignore[union-attr]
        capture_output=True,
        text=True,
        check=False,
    ).stdout.split()
    assert children
    for pid in children:
        os.kill(int(pid), signal.SIGSTOP)
    try:
        for number in range(6):
            event = sample_event(EventType.CUSTOMER_VALIDATED)
            event.update(event_id=f"stall-{number}-{uuid.uuid4().hex[:6]}", customer_group="RETAIL")
            publish(event)
        result = run("worker-check", "--window", "3", cwd=stack.directory, env=stack.env)
        assert result.code == 1, result.out
        assert result.out.startswith("stalled: ")
        # Two events sit in the frozen processes, the other four wait in the
        # worker for its next batch, so none is left in the queue to see.
        assert "events wait in it and it finished no task in 3 s" in result.out, result.out
    finally:
        for pid in children:
            os.kill(int(pid), signal.SIGCONT)
    stack.worker.stop()
    result = run("worker-check", "--window", "1", cwd=stack.directory, env=stack.env)
    assert result.code == 2
    assert result.out.strip() == "no worker answered a ping within 2 s"
    stack.worker = stack.new_worker().start()
