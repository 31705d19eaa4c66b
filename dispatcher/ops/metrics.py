"""Prometheus metrics of the API and the workers.

Workers count what they do (events, e-mails, retries, dead letters) and time
it (render, SMTP, event to acceptance). Celery's prefork pool runs tasks in
child processes, so workers use prometheus_client's multiprocess mode: every
child writes to files under PROMETHEUS_MULTIPROC_DIR, and whoever serves
``/metrics`` adds them up. The state of queues and deliveries is read at
scrape time instead of being counted, so it is right even after a restart
(``dispatcher.admin.status.StateCollector``); this module holds counters only.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    multiprocess,
)
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
BOUNCES = Counter(
    "dispatcher_bounces_total",
    "Messages to return paths by what they said: hard, soft, auto_reply, unknown.",
    ["kind"],
)
WEBHOOKS = Counter(
    "dispatcher_webhooks_total",
    "Webhook sends to the portal backend by outcome: delivered, retried, failed.",
    ["outcome"],
)
RELAY_ATTEMPTS = Counter(
    "dispatcher_relay_attempts_total",
    "Sends per relay by outcome: accepted, refused (the recipient's answer), relay_fault.",
    ["relay", "outcome"],
)
EVENT_BATCH_SIZE = Histogram(
    "dispatcher_event_batch_size",
    "Events handled together that arrived one message each (1 when a process was free).",
    buckets=(1, 2, 5, 10, 20, 50, 100),
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
RELAY_SECONDS = Histogram(
    "dispatcher_relay_seconds",
    "Time of one attempt on one relay, whatever its outcome.",
    ["relay"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
SMTP_SECONDS = Histogram(
    "dispatcher_smtp_seconds",
    "Time of one SMTP transaction, by outcome.",
    ["outcome"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)


def registry(state: Collector | None = None) -> CollectorRegistry:
    """The registry to serve: this process's metrics or all worker processes' files.

    ``state`` adds gauges read at scrape time (queue depths, the delivery
    record), which the API serves and the workers leave to it.
    """
    directory = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if directory:
        result = CollectorRegistry()
        multiprocess.MultiProcessCollector(result, path=directory)  # type: ignore[no-untyped-call]
    else:
        result = REGISTRY
    if state is not None:
        result = _with(result, state)
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


def exposition(state: Collector | None = None) -> tuple[bytes, str]:
    """The current metrics in Prometheus text format, and its content type."""
    return generate_latest(registry(state)), CONTENT_TYPE_LATEST
