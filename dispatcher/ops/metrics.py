"""Prometheus metrics of the API and the workers.

Workers count what they do (events, e-mails, retries, dead letters) and time
it (render, SMTP, event to acceptance). Celery's prefork pool runs tasks in
child processes, so workers use prometheus_client's multiprocess mode: every
child writes to files under PROMETHEUS_MULTIPROC_DIR, and whoever serves
``/metrics`` adds them up. The state of queues and deliveries is read at
scrape time instead of being counted, so it is right even after a restart.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

EVENTS = Counter(
    "dispatcher_events_total",
    "Events taken from the queue, by type, group and outcome.",
    ["type", "group", "outcome"],
)
EMAILS = Counter(
    "dispatcher_emails_total",
    "Delivery attempts by e-mail kind and resulting status.",
    ["kind", "status"],
)
RESCUED = Counter(
    "dispatcher_events_rescued_total",
    "Accepted events lost between Redis and a worker, enqueued again from the journal.",
)
RETRIES = Counter(
    "dispatcher_retries_total", "Attempts that will be tried again, by kind.", ["kind"]
)
DEAD_LETTERS = Counter(
    "dispatcher_dead_letters_total", "Deliveries that became dead letters, by kind.", ["kind"]
)
SUPPRESSED = Counter(
    "dispatcher_suppressed_total",
    "E-mails not sent because a limit held them back, by kind and reason.",
    ["kind", "reason"],
)
PUBLISHED = Counter(
    "dispatcher_published_total", "Events accepted by publish(), by type.", ["type"]
)
_LATENCY_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600)
EVENT_TO_ACCEPTANCE = Histogram(
    "dispatcher_event_to_acceptance_seconds",
    "From publishing an event to the SMTP server accepting its e-mail, by lane.",
    ["lane"],
    buckets=_LATENCY_BUCKETS,
)
RENDER_SECONDS = Histogram(
    "dispatcher_render_seconds",
    "Time to render one e-mail (subject, text, HTML).",
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1),
)
SMTP_SECONDS = Histogram(
    "dispatcher_smtp_seconds",
    "Time of one SMTP transaction, by outcome.",
    ["outcome"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)


class StateCollector(Collector):
    """Queue depths, unacknowledged messages and the delivery record, read at scrape time."""

    def __init__(self, include_workers: bool = True) -> None:
        self.include_workers = include_workers
        self._workers: tuple[float, int] = (0.0, 0)

    def collect(self) -> Iterator[GaugeMetricFamily]:
        from dispatcher.broker.queues import broker_state
        from dispatcher.errors import DispatcherError
        from dispatcher.settings import get_settings

        settings = get_settings()
        up = GaugeMetricFamily("dispatcher_broker_up", "1 if Redis answered this scrape.")
        try:
            state = broker_state(settings)
        except DispatcherError:
            up.add_metric([], 0)
            yield up
        else:
            up.add_metric([], 1)
            yield up
            depth = GaugeMetricFamily(
                "dispatcher_queue_depth",
                "Messages waiting per queue, all priority sub-queues included.",
                labels=["queue"],
            )
            for queue, value in state.depths.items():
                depth.add_metric([queue], value)
            yield depth
            yield GaugeMetricFamily(
                "dispatcher_queue_unacked",
                "Messages taken by workers and not yet acknowledged.",
                value=state.unacked,
            )
            yield GaugeMetricFamily(
                "dispatcher_oldest_unacked_seconds",
                "Age of the oldest unacknowledged message.",
                value=state.oldest_unacked_seconds or 0.0,
            )
            yield GaugeMetricFamily(
                "dispatcher_journal_events",
                "Accepted events in the journal: recent ones, and any not yet recorded.",
                value=state.journal,
            )
            yield GaugeMetricFamily(
                "dispatcher_journal_oldest_seconds",
                "Age of the oldest journal entry; about the grace period when all is well.",
                value=state.oldest_journal_seconds or 0.0,
            )
            if self.include_workers:
                yield GaugeMetricFamily(
                    "dispatcher_workers", "Workers that answered a ping.", value=self._count()
                )
        yield from self._record()

    def _count(self) -> int:
        # A ping takes up to a second; scrapes come every 15 s or so, so the
        # answer is reused for a few seconds.
        checked, count = self._workers
        if time.monotonic() - checked > 10:
            from dispatcher.admin.status import workers_seen

            count = len(workers_seen(timeout=0.5))
            self._workers = (time.monotonic(), count)
        return count

    def _record(self) -> Iterator[GaugeMetricFamily]:

        up = GaugeMetricFamily("dispatcher_database_up", "1 if the database answered.")
        try:
            from datetime import UTC, datetime

            from config_store.database import get_engine
            from dispatcher.delivery.record import DeliveryRecords

            records = DeliveryRecords(get_engine())
            counts = records.status_counts()
            oldest = records.oldest_waiting()
        except Exception:  # noqa: BLE001 - a scrape must not fail
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        deliveries = GaugeMetricFamily(
            "dispatcher_deliveries", "Deliveries in the record, by status.", labels=["status"]
        )
        for status, count in counts.items():
            deliveries.add_metric([status], count)
        yield deliveries
        age = (datetime.now(UTC) - oldest).total_seconds() if oldest else 0.0
        yield GaugeMetricFamily(
            "dispatcher_oldest_waiting_delivery_seconds",
            "Age of the oldest delivery still queued, retrying or unknown.",
            value=max(0.0, age),
        )


def registry(include_state: bool = True) -> CollectorRegistry:
    """The registry to serve: this process's metrics or all worker processes' files."""
    directory = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if directory:
        from prometheus_client import multiprocess

        result = CollectorRegistry()
        multiprocess.MultiProcessCollector(result, path=directory)  # type: ignore[no-untyped-call]
    else:
        result = REGISTRY
    if include_state:
        result = _with(result, StateCollector())
    return result


def _with(base: CollectorRegistry, extra: Collector) -> CollectorRegistry:
    combined = CollectorRegistry()
    combined.register(_Forward(base))
    combined.register(extra)
    return combined


class _Forward(Collector):
    def __init__(self, source: CollectorRegistry) -> None:
        self.source = source

    def collect(self) -> Iterator[Any]:
        yield from self.source.collect()


def exposition(include_state: bool = True) -> tuple[bytes, str]:
    """The current metrics in Prometheus text format, and its content type."""
    return generate_latest(registry(include_state)), CONTENT_TYPE_LATEST
