"""Celery glue only: decode, call the service, schedule follow-ups, retry on outages.

Task names and the one-argument JSON shape are public (CONTRACT §4); clients
in other languages send ``dispatcher.handle_event`` with the event object.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Any

from celery import Task
from celery.signals import (
    after_setup_logger,
    after_setup_task_logger,
    worker_init,
    worker_process_shutdown,
    worker_shutdown,
)
from celery.worker.consumer import Consumer

from dispatcher.broker import messages as task_messages
from dispatcher.broker.app import MAX_COUNTDOWN, VISIBILITY_TIMEOUT, app
from dispatcher.broker.guard import REASON_HEADER
from dispatcher.delivery.orchestrator import Dispatcher, FollowUp
from dispatcher.domain.kinds import queue_for
from dispatcher.errors import SchemaNotReady, StoreUnavailable

log = logging.getLogger("dispatcher.worker.tasks")

# Failures of the infrastructure (database down, schema not migrated yet):
# the message is kept and tried again, never acknowledged as done.
OUTAGES = (StoreUnavailable, SchemaNotReady)

_service: Dispatcher | None = None


def service() -> Dispatcher:
    """This process's dispatcher, with its own engine and SMTP connection."""
    global _service  # noqa: PLW0603 - one instance per worker process by design
    if _service is None:
        from config_store.database import get_engine
        from config_store.repository import SettingsRepository
        from dispatcher.delivery.limits import limits_from_settings
        from dispatcher.delivery.record import DeliveryRecords
        from dispatcher.settings import get_settings
        from dispatcher.smtp.transport import SmtpConfig, SmtpTransport

        config = get_settings()
        engine = get_engine()
        _service = Dispatcher(
            SettingsRepository(engine),
            DeliveryRecords(engine),
            SmtpTransport(SmtpConfig.from_settings(config)),
            config,
            limits=limits_from_settings(config),
        )
    return _service


def _forget_service() -> None:
    # A forked child must open its own SMTP connection and database pool.
    global _service  # noqa: PLW0603
    _service = None


os.register_at_fork(after_in_child=_forget_service)


@worker_process_shutdown.connect
def _close_transport(**_: Any) -> None:
    if _service is not None:
        _service.transport.close()


def schedule(follow_ups: Iterable[FollowUp]) -> None:
    """Enqueue retries that fit below the visibility timeout; the sweeper takes the rest."""
    for item in follow_ups:
        if item.delay <= MAX_COUNTDOWN:
            send_delivery.apply_async(
                (item.delivery_id,), countdown=item.delay, queue=queue_for(item.lane)
            )


def _outage_delay(retries: int) -> float:
    return float(min(MAX_COUNTDOWN, 2 ** min(retries, 6)))


@app.task(name="dispatcher.handle_event", bind=True, max_retries=None)
def handle_event(self: Task, *args: Any, **kwargs: Any) -> None:
    """Turn one event into e-mails. Exactly one positional argument: the event."""
    if len(args) != 1 or kwargs:
        service().records.record_rejected(
            None,
            "a dispatcher.handle_event message takes exactly one positional argument, the "
            f"event object; this one had {len(args)} positional and {len(kwargs)} keyword",
            {"args": list(args), "kwargs": kwargs},
            datetime.now(UTC),
        )
        return
    try:
        outcome = service().handle_event(args[0], getattr(self.request, "published_at", None))
    except OUTAGES as exc:
        log.warning("event postponed: %s", exc)
        raise self.retry(exc=exc, countdown=_outage_delay(self.request.retries)) from None
    schedule(outcome.follow_ups)


@app.task(name="dispatcher.handle_events", bind=True, max_retries=None)
def handle_events(self: Task, events: Any) -> None:
    """Turn a batch of events (a JSON array) into e-mails, sharing database work."""
    if not isinstance(events, list):
        service().records.record_rejected(
            None,
            "a dispatcher.handle_events message takes one argument, a list of events",
            events,
            datetime.now(UTC),
        )
        return
    try:
        outcomes = service().handle_events(events, getattr(self.request, "published_at", None))
    except OUTAGES as exc:
        log.warning("batch postponed: %s", exc)
        raise self.retry(exc=exc, countdown=_outage_delay(self.request.retries)) from None
    schedule(f for outcome in outcomes for f in outcome.follow_ups)


@app.task(name="dispatcher.test_send", bind=True, max_retries=None)
def test_send(self: Task, request: dict[str, Any]) -> None:
    """Send one e-mail kind with sample data to an address, marked as a test."""
    try:
        outcome = service().handle_test_send(request)
    except OUTAGES as exc:
        raise self.retry(exc=exc, countdown=_outage_delay(self.request.retries)) from None
    schedule(outcome.follow_ups)


@app.task(name="dispatcher.send_delivery", bind=True, max_retries=None)
def send_delivery(self: Task, delivery_id: int) -> None:
    """Attempt one recorded delivery again (a retry, a replay or a sweep)."""
    try:
        follow_ups = service().send([int(delivery_id)])
    except OUTAGES as exc:
        log.warning("delivery %s postponed: %s", delivery_id, exc)
        raise self.retry(exc=exc, countdown=_outage_delay(self.request.retries)) from None
    schedule(follow_ups)


@app.task(name="dispatcher.sweep", bind=True, max_retries=0)
def sweep(self: Task) -> None:
    """Re-enqueue deliveries whose task was lost or whose worker died, and lost events."""
    from dispatcher.broker import publisher
    from dispatcher.errors import BrokerUnavailable

    try:
        schedule(service().sweep())
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


class RecordingConsumer(Consumer):  # type: ignore[misc]
    """Checks every message before Celery reads it; a malformed one is recorded, not run.

    Celery's consumer trusts the shape of a message, and an exception in it
    stops the whole worker ("Unrecoverable error"), after which the message
    comes back and stops the next one. Every message is therefore checked
    first (``dispatcher.broker.messages``); one that fails is recorded as
    rejected with the reason and acknowledged. Whatever still goes wrong
    inside Celery's handler is caught the same way, so that no input can stop
    a worker; only connection errors pass, for Celery to reconnect.
    """

    def create_task_handler(self, *args: Any, **kwargs: Any) -> Callable[[Any], None]:
        handler = super().create_task_handler(*args, **kwargs)
        connection_errors = tuple(self.connection_errors)

        def on_task_received(message: Any) -> None:
            refusal = _refusal(message)
            if refusal is not None:
                self._refuse(message, *refusal)
                return
            try:
                handler(message)
            except connection_errors:
                raise
            except Exception as exc:
                log.exception("a task message broke Celery's consumer; it is recorded as rejected")
                self._refuse(
                    message,
                    f"the worker could not take this message: {type(exc).__name__}: {exc}",
                    _excerpt(message),
                    None,
                )

        return on_task_received

    def _refuse(self, message: Any, reason: str, payload: object, event_id: str | None) -> None:
        self._record(payload, reason, event_id)
        if not message.acknowledged:
            message.ack_log_error(log, self.connection_errors)

    def _record(self, body: object, reason: str, event_id: str | None = None) -> None:
        log.warning("message rejected: %s", reason)
        try:
            service().records.record_rejected(event_id, reason, body, datetime.now(UTC))
        except Exception:
            # Acknowledged all the same: a message kept would come back and
            # fail again for ever. The log line keeps what it was.
            log.exception("could not record a rejected message (%s): %.2000r", reason, body)

    def on_decode_error(self, message: Any, exc: Exception) -> None:
        self._record(
            message.body if isinstance(message.body, str) else repr(message.body)[:4000],
            f"the message body cannot be decoded ({message.content_type}): {exc}; "
            "send JSON (content type application/json)",
        )
        super().on_decode_error(message, exc)

    def on_unknown_task(self, body: Any, message: Any, exc: Exception) -> None:
        name = (message.headers or {}).get("task")
        self._record(body, f"unknown task {name!r}; the task is named dispatcher.handle_event")
        super().on_unknown_task(body, message, exc)

    def on_invalid_task(self, body: Any, message: Any, exc: Exception) -> None:
        self._record(body, f"invalid task message: {exc}")
        super().on_invalid_task(body, message, exc)

    def on_unknown_message(self, body: Any, message: Any) -> None:
        self._record(body, "a message that is not a Celery task message")
        super().on_unknown_message(body, message)


def _excerpt(message: Any) -> object:
    body = getattr(message, "body", None)
    if isinstance(body, bytes):
        return body[:4000].decode("utf-8", "replace")
    return body if isinstance(body, str) else repr(body)[:4000]


def _refusal(message: Any) -> tuple[str, object, str | None] | None:
    """Why ``message`` must not reach Celery, what to record of it and its event id."""
    headers = message.headers
    if isinstance(headers, dict) and headers.get(REASON_HEADER):
        return str(headers[REASON_HEADER]), _excerpt(message), None
    now = datetime.now(UTC)
    payload: object = _excerpt(message)
    try:
        protocol2 = isinstance(headers, dict) and "task" in headers
        if protocol2:
            task = task_messages.check_headers(headers, now, VISIBILITY_TIMEOUT)
        try:
            payload = message.payload
        except Exception as exc:  # noqa: BLE001 - decoding a hostile body may raise anything
            raise task_messages.BadMessage(
                f"the message body cannot be decoded ({message.content_type}): {exc}; "
                "send JSON (content type application/json)"
            ) from None
        if protocol2:
            args, _ = task_messages.check_body(task, payload)
            payload = args[0] if len(args) == 1 else args
        else:
            task_messages.check_protocol1(payload, now, VISIBILITY_TIMEOUT)
    except task_messages.BadMessage as exc:
        event_id = None
        if isinstance(payload, list) and len(payload) == 3:
            event_id = task_messages.event_id_of(payload[0])
        return str(exc), payload, event_id
    return None


@after_setup_logger.connect
@after_setup_task_logger.connect
def _json_logs(logger: logging.Logger, **_: Any) -> None:
    from dispatcher.ops.logs import use_json
    from dispatcher.settings import get_settings

    if get_settings().log_format == "json":
        use_json(logger)
    # One "received" and one "succeeded" line per task add nothing to the
    # delivery step lines and cost time on every e-mail; warnings still show.
    for name in ("celery.app.trace", "celery.worker.strategy"):
        logging.getLogger(name).setLevel(logging.WARNING)


@worker_init.connect
def _serve_metrics(**_: Any) -> None:
    """Serve this worker's /metrics (all its pool processes) on its own port."""
    from prometheus_client import start_http_server

    from dispatcher.ops.metrics import registry
    from dispatcher.settings import get_settings

    port = get_settings().worker_metrics_port
    if port == 0 or not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        return
    try:
        start_http_server(port, registry=registry(include_state=False))
    except OSError as exc:
        log.warning(
            "worker metrics not served: port %s is taken (%s); set DISPATCHER_WORKER_METRICS_PORT",
            port,
            exc,
        )
    else:
        log.info("worker metrics on http://0.0.0.0:%s/metrics", port)


@worker_process_shutdown.connect
def _forget_process_metrics(pid: int | None = None, **_: Any) -> None:
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(pid or os.getpid())


@worker_shutdown.connect
def _remove_own_metrics_dir(**_: Any) -> None:
    directory = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if directory and os.environ.get("DISPATCHER_OWN_METRICS_DIR"):
        import shutil

        shutil.rmtree(directory, ignore_errors=True)
