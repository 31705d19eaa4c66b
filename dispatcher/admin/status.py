"""The operator's overview: queues, deliveries and workers, as data and as text."""

from __future__ import annotations

from typing import Any

from dispatcher.errors import DispatcherError


def workers_seen(timeout: float = 1.0) -> list[str]:
    """Names of the workers that answered a ping within ``timeout`` seconds."""
    from dispatcher.broker.app import app

    try:
        replies = app.control.inspect(timeout=timeout).ping() or {}
    except Exception:  # noqa: BLE001 - no broker means no workers to see
        return []
    return sorted(replies)


def collect_status() -> dict[str, Any]:
    from config_store.database import get_engine, require_schema
    from dispatcher.broker.queues import broker_state
    from dispatcher.delivery.record import DeliveryRecords
    from dispatcher.settings import get_settings

    settings = get_settings()
    report: dict[str, Any] = {}
    try:
        state = broker_state(settings)
        report["queues"] = state.depths
        report["unacked"] = state.unacked
        report["oldest_unacked_seconds"] = state.oldest_unacked_seconds
        report["journal"] = state.journal
        report["oldest_journal_seconds"] = state.oldest_journal_seconds
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
