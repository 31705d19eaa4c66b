"""Celery glue only: decode, call the orchestrator, schedule follow-ups, retry on outages.

Task names and the one-argument JSON shape are public (CONTRACT §4); clients
in other languages send ``dispatcher.handle_event`` with the event object.
The shape of every message is checked before a task runs
(``dispatcher.worker.consumer``), so the tasks take their arguments as given.
"""

from __future__ import annotations

import logging
from typing import Any

from celery import Task

from dispatcher.broker import messages, publisher
from dispatcher.broker.app import MAX_COUNTDOWN, app
from dispatcher.errors import BrokerUnavailable, SchemaNotReady, StoreUnavailable
from dispatcher.worker.bootstrap import service

log = logging.getLogger("dispatcher.worker.tasks")

# Failures of the infrastructure (database down, schema not migrated yet):
# the message is kept and tried again, never acknowledged as done.
OUTAGES = (StoreUnavailable, SchemaNotReady)


def _outage_delay(retries: int) -> float:
    return float(min(MAX_COUNTDOWN, 2 ** min(retries, 6)))


@app.task(name=messages.HANDLE_EVENT, bind=True, max_retries=None)
def handle_event(self: Task, event: Any) -> None:
    """Turn one event into e-mails."""
    try:
        outcome = service().handle_event(event, getattr(self.request, "published_at", None))
    except OUTAGES as exc:
        log.warning("event postponed: %s", exc)
        raise self.retry(exc=exc, countdown=_outage_delay(self.request.retries)) from None
    publisher.schedule(outcome.follow_ups)


@app.task(name=messages.HANDLE_EVENTS, bind=True, max_retries=None)
def handle_events(self: Task, events: list[Any]) -> None:
    """Turn a batch of events (a JSON array) into e-mails, sharing database work."""
    try:
        outcomes = service().handle_events(events, getattr(self.request, "published_at", None))
    except OUTAGES as exc:
        log.warning("batch postponed: %s", exc)
        raise self.retry(exc=exc, countdown=_outage_delay(self.request.retries)) from None
    publisher.schedule(f for outcome in outcomes for f in outcome.follow_ups)


@app.task(name=messages.TEST_SEND, bind=True, max_retries=None)
def test_send(self: Task, request: dict[str, Any]) -> None:
    """Send one e-mail kind with sample data to an address, marked as a test."""
    try:
        outcome = service().handle_test_send(request)
    except OUTAGES as exc:
        raise self.retry(exc=exc, countdown=_outage_delay(self.request.retries)) from None
    publisher.schedule(outcome.follow_ups)


@app.task(name=messages.SEND_DELIVERY, bind=True, max_retries=None)
def send_delivery(self: Task, delivery_id: int) -> None:
    """Attempt one recorded delivery again (a retry, a replay or a sweep)."""
    try:
        follow_ups = service().send([delivery_id])
    except OUTAGES as exc:
        log.warning("delivery %s postponed: %s", delivery_id, exc)
        raise self.retry(exc=exc, countdown=_outage_delay(self.request.retries)) from None
    publisher.schedule(follow_ups)


@app.task(name=messages.SWEEP, bind=True, max_retries=0)
def sweep(self: Task) -> None:
    """Re-enqueue deliveries whose task was lost or whose worker died, and lost events."""
    try:
        publisher.schedule(service().sweep())
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
