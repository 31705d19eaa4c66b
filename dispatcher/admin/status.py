"""The operator's overview: queues, deliveries and workers, as data, text and gauges.

``dispatcher status``, ``/readyz`` and the gauges of ``/metrics`` read the
same state: the broker's queues and the delivery record.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError

from config_store.database import first_line, get_engine, ping, redact, require_schema
from dispatcher.admin.pipeline import Pipeline
from dispatcher.admin.relays import BREAKER_NAMES, Relays
from dispatcher.broker.app import app
from dispatcher.broker.queues import broker_state
from dispatcher.delivery.record import DeliveryRecords
from dispatcher.delivery.suppressions import SuppressionList
from dispatcher.delivery.webhooks import WebhookOutbox
from dispatcher.errors import DispatcherError
from dispatcher.settings import Settings, get_settings


def workers_seen(timeout: float = 1.0) -> list[str]:
    """Names of the workers that answered a ping within ``timeout`` seconds."""
    try:
        replies = app.control.inspect(timeout=timeout).ping() or {}
    except Exception:  # noqa: BLE001 - no broker means no workers to see
        return []
    return sorted(replies)


def collect_status() -> dict[str, Any]:
    settings = get_settings()
    report: dict[str, Any] = {}
    try:
        state = broker_state(settings)
        report["queues"] = state.depths
        report["unacked"] = state.unacked
        report["oldest_unacked_seconds"] = state.oldest_unacked_seconds
        report["journal"] = state.journal
        report["oldest_journal_seconds"] = state.oldest_journal_seconds
        report["last_sweep_seconds"] = state.last_sweep_seconds
        report["broker"] = "ok"
        report["workers"] = workers_seen()
    except DispatcherError as exc:
        report["broker"] = str(exc)
        report["queues"] = None
        report["workers"] = []
    engine = get_engine()
    try:
        require_schema(engine)
        records = DeliveryRecords(engine)
        report["deliveries"] = records.status_counts()
        oldest = records.oldest_waiting()
        report["oldest_waiting_delivery"] = oldest.isoformat() if oldest else None
        report["failed_events"] = len(records.failed_events(limit=100_000))
        report["database"] = "ok"
    except DispatcherError as exc:
        report["database"] = str(exc)
        report["deliveries"] = None
    return report


def format_status(report: dict[str, Any]) -> str:
    lines: list[str] = []
    if report.get("queues") is None:
        lines.append(f"broker: {report['broker']}")
    else:
        lines.append("queues (waiting, all priorities):")
        for name, depth in report["queues"].items():
            lines.append(f"  {name:<26} {depth}")
        lines.append(f"  {'unacknowledged':<26} {report['unacked']}")
        age = report["oldest_journal_seconds"]
        since = f" (oldest {age:.0f} s)" if age is not None else ""
        lines.append(f"  {'journal':<26} {report['journal']}{since}")
        swept = report.get("last_sweep_seconds")
        lines.append(
            "sweep: never ran (start a worker)"
            if swept is None
            else f"sweep: last ran {swept:.0f} s ago"
        )
        workers = report["workers"]
        lines.append(f"workers: {', '.join(workers) if workers else 'none answered'}")
    if report.get("deliveries") is None:
        lines.append(f"database: {report['database']}")
    else:
        lines.append("deliveries:")
        for status, count in report["deliveries"].items():
            lines.append(f"  {status:<12} {count}")
        lines.append(f"failed events: {report['failed_events']}")
        if report.get("oldest_waiting_delivery"):
            lines.append(f"oldest waiting delivery: {report['oldest_waiting_delivery']}")
    return "\n".join(lines)


class StateCollector(Collector):
    """Queue depths, unacknowledged messages and the delivery record, read at scrape time."""

    def __init__(self, engine: Engine, config: Settings, include_workers: bool = True) -> None:
        self.engine = engine
        self.config = config
        self.include_workers = include_workers
        self._workers: tuple[float, int] = (0.0, 0)
        self._relays: Relays | None = None

    def collect(self) -> Iterator[GaugeMetricFamily]:
        up = GaugeMetricFamily("dispatcher_broker_up", "1 if Redis answered this scrape.")
        try:
            state = broker_state(self.config)
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
                "dispatcher_last_sweep_seconds",
                "Seconds since a sweep last ran; about the sweep interval when all is well.",
                value=state.last_sweep_seconds if state.last_sweep_seconds is not None else -1.0,
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
        yield from self._breakers()

    def _breakers(self) -> Iterator[GaugeMetricFamily]:
        state = GaugeMetricFamily(
            "dispatcher_relay_breaker_state",
            "Each relay's breaker: 0 closed (in use), 1 half-open (probing), 2 open (skipped).",
            labels=["relay"],
        )
        try:
            if self._relays is None:
                self._relays = Relays(self.config)
            overview = self._relays.overview(time.time())
        except Exception:  # noqa: BLE001 - a scrape must not fail
            return
        codes = {name: code for code, name in BREAKER_NAMES.items()}
        for relay in overview.relays:
            state.add_metric([relay.name], int(codes[relay.breaker]))
        yield state

    def _count(self) -> int:
        # A ping takes up to a second; scrapes come every 15 s or so, so the
        # answer is reused for a few seconds.
        checked, count = self._workers
        if time.monotonic() - checked > 10:
            count = len(workers_seen(timeout=0.5))
            self._workers = (time.monotonic(), count)
        return count

    def _record(self) -> Iterator[GaugeMetricFamily]:
        up = GaugeMetricFamily("dispatcher_database_up", "1 if the database answered.")
        try:
            records = DeliveryRecords(self.engine)
            counts = records.status_counts()
            oldest = records.oldest_waiting()
            webhooks = WebhookOutbox(self.engine).counts()
            suppressed = SuppressionList(self.engine).entries(limit=1)[1]
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
        outbox = GaugeMetricFamily(
            "dispatcher_webhooks",
            "Webhooks in the outbox, by status: pending, delivered, failed (given up).",
            labels=["status"],
        )
        for status, count in webhooks.items():
            outbox.add_metric([status], count)
        yield outbox
        yield GaugeMetricFamily(
            "dispatcher_suppressed_addresses",
            "Addresses on the suppression list.",
            value=suppressed,
        )


@dataclass(frozen=True)
class Readiness:
    database: str  # "ok" or the problem
    broker: str

    @property
    def ready(self) -> bool:
        return self.database == "ok" and self.broker == "ok"


def readiness(engine: Engine, pipeline: Pipeline) -> Readiness:
    """Whether the database (with this code's schema) and the broker can be reached."""
    try:
        ping(engine)
        require_schema(engine)
        database = "ok"
    except DispatcherError as exc:
        database = str(exc)
    except SQLAlchemyError as exc:
        database = (
            f"cannot reach the database {redact(str(engine.url))}: {first_line(exc)}; check "
            "DISPATCHER_DATABASE_URL and that the database server is running"
        )
    broker = pipeline.broker_problem() or "ok"
    return Readiness(database, broker)
