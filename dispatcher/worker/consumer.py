"""The worker's consumer: every message is checked before Celery reads it.

Celery's consumer trusts the shape of a message, and an exception in it
stops the whole worker ("Unrecoverable error"), after which the message comes
back and stops the next one. Every message is therefore checked first
(``dispatcher.broker.messages``); one that fails is recorded as rejected with
the reason and acknowledged. Whatever still goes wrong inside Celery's
handler is caught the same way, so that no input can stop a worker; only
connection errors pass, for Celery to reconnect.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from celery.worker.consumer import Consumer

from dispatcher.broker import messages
from dispatcher.broker.app import VISIBILITY_TIMEOUT
from dispatcher.broker.guard import REASON_HEADER
from dispatcher.worker.bootstrap import service

log = logging.getLogger("dispatcher.worker")


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
            task = messages.check_headers(headers, now, VISIBILITY_TIMEOUT)
        try:
            payload = message.payload
        except Exception as exc:  # noqa: BLE001 - decoding a hostile body may raise anything
            raise messages.BadMessage(
                f"the message body cannot be decoded ({message.content_type}): {exc}; "
                "send JSON (content type application/json)"
            ) from None
        if protocol2:
            args, _ = messages.check_body(task, payload)
            payload = args[0] if len(args) == 1 else args
        else:
            messages.check_protocol1(payload, now, VISIBILITY_TIMEOUT)
    except messages.BadMessage as exc:
        event_id = None
        if isinstance(payload, list) and len(payload) == 3:
            event_id = messages.event_id_of(payload[0])
        return str(exc), payload, event_id
    return None
