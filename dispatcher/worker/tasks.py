"""Celery glue only: decode, call the orchestrator, schedule follow-ups, retry on outages.

Task names and the one-argument JSON shape are public (CONTRACT §4); clients
in other languages send ``dispatcher.handle_event`` with the event object.
The shape of every message is checked before a task runs
(``dispatcher.worker.consumer``), so the tasks take their arguments as given.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from celery import Task

from dispatcher.broker import messages, publisher
from dispatcher.broker.app import MAX_COUNTDOWN, app
from dispatcher.domain.follow_ups import FollowUp
from dispatcher.errors import BrokerUnavailable, SchemaNotReady, StoreUnavailable
from dispatcher.ops import metrics
from dispatcher.worker.bootstrap import service, webhook_sender

log = logging.getLogger("dispatcher.worker.tasks")

# Failures of the infrastructure (database down, schema not migrated yet):
# the message is kept and tried again, never acknowledged as done.
OUTAGES = (StoreUnavailable, SchemaNotReady)


# A webhook task sends for at most this long, then hands the rest to the next
# task, so that it ends well within the task time limit.
WEBHOOK_ROUND_SECONDS = 20


def outage_delay(retries: int) -> float:
    return float(min(MAX_COUNTDOWN, 2 ** min(retries, 6)))


def after(follow_ups: Iterable[FollowUp]) -> None:
    """Schedule what the orchestrator handed back: retries, and the webhooks it wrote."""
    publisher.schedule(follow_ups)
    if service().take_webhooks_due():
        publisher.send_webhooks_soon()


# The consumer takes these messages through dispatcher.worker.batching, which
# hands several to one process as a batch while the pool is busy; this body
# runs for the rest (retries with an ETA, or a batch size of 1).
@app.task(
    name=messages.HANDLE_EVENT,
    bind=True,
    max_retries=None,
    Strategy="dispatcher.worker.batching:strategy",
)
def handle_event(self: Task, event: Any) -> None:
    """Turn one event into e-mails."""
    try:
        outcome = service().handle_event(event, getattr(self.request, "published_at", None))
    except OUTAGES as exc:
        log.warning("event postponed: %s", exc)
        raise self.retry(exc=exc, countdown=outage_delay(self.request.retries)) from None
    after(outcome.follow_ups)


@app.task(name=messages.HANDLE_EVENTS, bind=True, max_retries=None)
def handle_events(self: Task, events: list[Any]) -> None:
    """Turn a batch of events (a JSON array) into e-mails, sharing database work."""
    try:
        outcomes = service().handle_events(events, getattr(self.request, "published_at", None))
    except OUTAGES as exc:
        log.warning("batch postponed: %s", exc)
        raise self.retry(exc=exc, countdown=outage_delay(self.request.retries)) from None
    after(f for outcome in outcomes for f in outcome.follow_ups)


@app.task(name=messages.TEST_SEND, bind=True, max_retries=None)
def test_send(self: Task, request: dict[str, Any]) -> None:
    """Send one e-mail kind with sample data to an address, marked as a test."""
    try:
        outcome = service().handle_test_send(request)
    except OUTAGES as exc:
        raise self.retry(exc=exc, countdown=outage_delay(self.request.retries)) from None
    after(outcome.follow_ups)


@app.task(name=messages.SEND_DELIVERY, bind=True, max_retries=None)
def send_delivery(self: Task, delivery_id: int) -> None:
    """Attempt one recorded delivery again (a retry, a replay or a sweep)."""
    try:
        follow_ups = service().send([delivery_id])
    except OUTAGES as exc:
        log.warning("delivery %s postponed: %s", delivery_id, exc)
        raise self.retry(exc=exc, countdown=outage_delay(self.request.retries)) from None
    after(follow_ups)


@app.task(name=messages.SEND_WEBHOOKS, bind=True, max_retries=None)
def send_webhooks(self: Task) -> None:
    """Send the webhooks that are due; hand what is left to the next task."""
    publisher.webhooks_round_started()
    sender = webhook_sender()
    deadline = time.monotonic() + WEBHOOK_ROUND_SECONDS
    try:
        while time.monotonic() < deadline:
            result = sender.send_due()
            metrics.WEBHOOKS.labels(outcome="delivered").inc(result.delivered)
            metrics.WEBHOOKS.labels(outcome="retried").inc(result.retried)
            metrics.WEBHOOKS.labels(outcome="failed").inc(result.failed)
            if not (result.delivered + result.retried + result.failed):
                return
    except OUTAGES as exc:
        log.warning("webhooks postponed: %s", exc)
        raise self.retry(exc=exc, countdown=outage_delay(self.request.retries)) from None
    # Out of time with more due: the next round starts at once.
    publisher.send_webhooks_soon(gather=0)


@app.task(name=messages.SWEEP, bind=True, max_retries=0)
def sweep(self: Task) -> None:
    """Re-enqueue deliveries whose task was lost or whose worker died, and lost events."""
    publisher.note_sweep(time.time())
    try:
        publisher.schedule(service().sweep())
        if webhook_sender().outbox.due_count(datetime.now(UTC)):
            publisher.send_webhooks_soon(gather=0)
        rescued = publisher.rescue_journal(
            service().records.recorded_events, service().config.journal_grace_seconds
        )
    except (*OUTAGES, BrokerUnavailable) as exc:  # The next sweep comes soon.
        log.warning("sweep skipped: %s", exc)
        return
    if rescued is not None and rescued.requeued:
        log.warning(
            "sweep re-enqueues %d accepted events that never reached a worker",
            len(rescued.requeued),
        )
