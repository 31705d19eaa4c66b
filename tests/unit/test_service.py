"""The delivery state machine, step by step, with a frozen clock and a scripted transport.

The database is real (SQLite and PostgreSQL); only SMTP is scripted here. The
same paths run against a real SMTP server in the integration tests.
"""

from __future__ import annotations

import email
import email.policy
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from typing import Any

import pytest
from sqlalchemy import Engine, update

from config_store.repository import SettingsRepository
from dispatcher.delivery.models import Delivery
from dispatcher.delivery.orchestrator import Dispatcher
from dispatcher.delivery.record import DeliveryRecords
from dispatcher.delivery.views import DeliveryFilter
from dispatcher.domain.kinds import EventType
from dispatcher.domain.samples import sample_event
from dispatcher.settings import Settings
from dispatcher.smtp.transport import (
    PermanentFailure,
    Route,
    SmtpReply,
    TemporaryFailure,
    UncertainOutcome,
)
from tests.support.documents import full


class ScriptedTransport:
    """Answers each send with the next scripted outcome; records what was sent."""

    def __init__(self, *script: Any) -> None:
        self.script = list(script)
        self.sent: list[tuple[EmailMessage, str, str]] = []

    def deliver(self, data: bytes, sender: str, recipient: str, route: Route) -> SmtpReply:
        message = email.message_from_bytes(data, policy=email.policy.default)
        assert isinstance(message, EmailMessage)
        self.sent.append((message, sender, recipient))
        outcome = self.script.pop(0) if self.script else SmtpReply(250, "2.0.0 OK queued as A1")
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    def close(self) -> None:
        pass


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 11, 27, 9, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


CONFIG = Settings(
    retry_base_seconds=10,
    retry_max_seconds=100,
    retry_max_attempts=4,
    smtp_timeout=20,
)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def make(engine: Engine, clock: Clock) -> Any:
    repository = SettingsRepository(engine)
    repository.add_group("RETAIL", "Retail customers")
    repository.save_settings("RETAIL", full(), "test")

    def build(*script: Any) -> tuple[Dispatcher, ScriptedTransport]:
        transport = ScriptedTransport(*script)
        service = Dispatcher(
            repository,
            DeliveryRecords(engine),
            transport,
            CONFIG,  # type: ignore[arg-type]
            clock=clock,
            jitter=lambda: 1.0,
        )
        return service, transport

    return build


def reset_event(event_id: str = "e-1") -> dict[str, Any]:
    event = sample_event(EventType.PASSWORD_RESET)
    event.update(event_id=event_id, customer_group="RETAIL")
    return event


def test_happy_path_records_sent_with_the_reply(make: Any) -> None:
    service, transport = make()
    outcome = service.handle_event(reset_event())
    assert outcome.status == "accepted"
    [row] = service.records.deliveries()
    assert (row.status, row.attempts, row.last_code, row.last_text) == (
        "sent",
        1,
        250,
        "2.0.0 OK queued as A1",
    )
    message, sender, recipient = transport.sent[0]
    assert (sender, recipient) == ("portal@example.com", "anna.schmidt@example.com")
    assert message["Message-ID"] == row.message_id


def test_temporary_failures_back_off_exponentially_then_succeed(make: Any, clock: Clock) -> None:
    service, transport = make(
        TemporaryFailure("try later", 451), TemporaryFailure("try later", 451)
    )
    outcome = service.handle_event(reset_event())
    [follow] = outcome.follow_ups
    [row] = service.records.deliveries()
    assert (row.status, row.attempts, row.last_code) == ("retrying", 1, 451)
    assert follow.delay == pytest.approx(10)
    # Not due yet: a retry that fires early claims nothing.
    assert service.send([row.id]) == []
    assert len(transport.sent) == 1
    clock.advance(10)
    [follow] = service.send([row.id])
    assert follow.delay == pytest.approx(20)
    clock.advance(20)
    assert service.send([row.id]) == []
    [row] = service.records.deliveries()
    assert (row.status, row.attempts, row.last_code) == ("sent", 3, 250)
    assert len(transport.sent) == 3
    # Every attempt carried the same Message-ID.
    assert len({m["Message-ID"] for m, _, _ in transport.sent}) == 1


def test_retries_are_bounded_and_end_as_dead_letters(make: Any, clock: Clock) -> None:
    service, _ = make(*[TemporaryFailure("mailbox busy", 450)] * 10)
    service.handle_event(reset_event())
    [row] = service.records.deliveries()
    for _ in range(3):
        clock.advance(1000)
        service.send([row.id])
    [row] = service.records.deliveries()
    assert (row.status, row.attempts, row.last_code) == ("dead", 4, 450)
    assert row.last_text == "gave up after 4 attempts; last: mailbox busy"


def test_permanent_failure_is_dead_at_once(make: Any) -> None:
    service, transport = make(PermanentFailure("RCPT TO refused: 5.1.1 unknown user", 550))
    outcome = service.handle_event(reset_event())
    assert outcome.follow_ups == ()
    [row] = service.records.deliveries()
    assert (row.status, row.attempts, row.last_code) == ("dead", 1, 550)
    assert row.last_text == "RCPT TO refused: 5.1.1 unknown user"
    assert len(transport.sent) == 1


def test_uncertain_outcome_is_recorded_and_sent_again(make: Any, clock: Clock) -> None:
    service, transport = make(UncertainOutcome("connection lost after the final dot"))
    outcome = service.handle_event(reset_event())
    [row] = service.records.deliveries()
    assert (row.status, row.uncertain) == ("unknown", True)
    clock.advance(outcome.follow_ups[0].delay)
    service.send([row.id])
    [row] = service.records.deliveries()
    assert (row.status, row.uncertain, row.attempts) == ("sent", True, 2)
    assert len(transport.sent) == 2


def test_duplicate_event_sends_nothing_more(make: Any) -> None:
    service, transport = make()
    service.handle_event(reset_event())
    second = service.handle_event(reset_event())
    assert second.status == "duplicate"
    assert len(transport.sent) == 1
    assert len(service.records.deliveries()) == 1


def test_a_delivery_being_sent_is_not_taken_by_a_second_worker(
    make: Any, engine: Engine, clock: Clock
) -> None:
    service, transport = make(TemporaryFailure("later", 451))
    service.handle_event(reset_event())
    [row] = service.records.deliveries()
    clock.advance(60)
    lease = timedelta(seconds=CONFIG.sending_lease_seconds)
    claimed = service.records.claim([row.id], clock(), lease, timedelta(0))
    assert [c.delivery.id for c in claimed] == [row.id]
    # A second worker (a redelivered task) finds it "sending" and leaves it.
    assert service.send([row.id]) == []
    assert len(transport.sent) == 1
    # After the lease, the first worker counts as dead: taken over, uncertain.
    clock.advance(CONFIG.sending_lease_seconds + 1)
    service.send([row.id])
    [row] = service.records.deliveries()
    assert (row.status, row.uncertain, row.attempts) == ("sent", True, 3)


def test_sweeper_finds_lost_and_abandoned_deliveries(
    make: Any, engine: Engine, clock: Clock
) -> None:
    service, _ = make(TemporaryFailure("later", 451))
    service.handle_event(reset_event("lost"))
    [lost] = service.records.deliveries()
    # Not overdue yet: nothing to sweep.
    assert service.sweep() == []
    clock.advance(10 + 31)
    [follow] = service.sweep()
    assert follow.delivery_id == lost.id
    # Enqueued once; the next sweeps leave it alone while its task travels.
    clock.advance(31)
    assert service.sweep() == []
    # A delivery whose worker died mid-send.
    service.handle_event(reset_event("abandoned"))
    with engine.begin() as connection:
        connection.execute(
            update(Delivery)
            .where(Delivery.event_id == "abandoned")
            .values(status="sending", claimed_at=clock() - timedelta(seconds=61))
        )
    swept = service.sweep()
    [abandoned] = service.records.deliveries(DeliveryFilter(event_id="abandoned"))
    assert abandoned.id in [f.delivery_id for f in swept]
    assert (abandoned.status, abandoned.uncertain) == ("unknown", True)


def test_render_failure_is_a_dead_letter_with_the_reason(make: Any, engine: Engine) -> None:
    service, transport = make()
    repository = SettingsRepository(engine)
    document = full()
    document["password_reset"]["body"] = (
        "{{ reset_url }} {{ 1 / (0 if username == 'zero' else 1) }}"
    )
    repository.save_settings("RETAIL", document, "test")
    event = reset_event()
    event["username"] = "zero"
    service.handle_event(event)
    [row] = service.records.deliveries()
    assert row.status == "dead"
    assert row.last_text == "cannot render: body: fails to render: division by zero"
    assert transport.sent == []


def test_unknown_group_is_failed_not_dropped(make: Any) -> None:
    service, _ = make()
    event = reset_event()
    event["customer_group"] = "NOPE"
    outcome = service.handle_event(event)
    assert outcome.status == "failed"
    recorded = service.records.get_event("e-1")
    assert recorded is not None
    assert (recorded.outcome, recorded.customer_group) == ("failed", "NOPE")
    assert "add it first with: dispatcher groups add NOPE" in (recorded.reason or "")


def test_invalid_event_is_rejected_with_its_reason(make: Any) -> None:
    service, transport = make()
    outcome = service.handle_event({"event_id": "x1", "type": "password.reset"})
    assert outcome.status == "rejected"
    [rejected] = service.records.rejected()
    assert rejected.event_id == "x1"
    assert rejected.reason.startswith("customer_group: is required; add it")
    assert transport.sent == []


def test_a_batch_records_delivers_and_accounts_for_every_event(make: Any) -> None:
    service, transport = make(TemporaryFailure("later", 451))
    duplicate = reset_event("batch-dup")
    service.handle_event(duplicate)
    unknown = reset_event("batch-unknown")
    unknown["customer_group"] = "NOPE"
    batch = [
        reset_event("batch-1"),
        {"event_id": "batch-bad", "type": "password.reset"},
        duplicate,
        unknown,
        reset_event("batch-2"),
    ]
    outcomes = service.handle_events(batch)
    assert [(o.event_id, o.status) for o in outcomes] == [
        ("batch-bad", "rejected"),
        ("batch-unknown", "failed"),
        ("batch-1", "accepted"),
        ("batch-dup", "duplicate"),
        ("batch-2", "accepted"),
    ]
    rows = {r.event_id: r for r in service.records.deliveries()}
    assert (rows["batch-1"].status, rows["batch-2"].status) == ("sent", "sent")
    # The duplicate's first delivery got the 451 and is retrying: not sent again here.
    assert rows["batch-dup"].status == "retrying"
    assert len(transport.sent) == 3
    again = service.handle_events([reset_event("batch-1")])
    assert [o.status for o in again] == ["duplicate"]
    assert len(transport.sent) == 3


def test_the_same_event_twice_in_one_batch_is_sent_once(make: Any) -> None:
    service, transport = make()
    outcomes = service.handle_events([reset_event("twice"), reset_event("twice")])
    assert [o.status for o in outcomes] == ["accepted", "duplicate"]
    assert len(transport.sent) == 1
    assert [r.status for r in service.records.deliveries()] == ["sent"]
