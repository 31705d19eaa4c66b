"""The portal backend's client: validate, then enqueue (CONTRACT §4)."""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from dispatcher import metrics
from dispatcher.errors import BrokerUnavailable, FieldError, InvalidEvent
from dispatcher.events import Event, parse_event
from dispatcher.kinds import lane_for_event, queue_for

TASK_NAME = "dispatcher.handle_event"
BATCH_TASK_NAME = "dispatcher.handle_events"
# Bounded: a publisher must learn within about two seconds that Redis is down.
_RETRY_POLICY = {"max_retries": 2, "interval_start": 0, "interval_step": 0.2, "interval_max": 0.4}


def _payload(event: Event) -> dict[str, Any]:
    return event.model_dump(mode="json", exclude_none=True)


def _send_task(task: str, argument: Any, queue: str, what: str) -> None:
    """Send one task message; raise ``BrokerUnavailable`` saying what was not enqueued."""
    from kombu.exceptions import OperationalError

    from dispatcher.celery_app import app

    try:
        app.send_task(
            task,
            args=[argument],
            queue=queue,
            routing_key=queue,
            retry=True,
            retry_policy=_RETRY_POLICY,
            # Lets the worker time event-to-acceptance; optional for other clients.
            headers={"published_at": time.time()},
        )
    except (OperationalError, OSError) as exc:
        from dispatcher.settings import get_settings, redact_url

        raise BrokerUnavailable(
            f"cannot reach the broker at {redact_url(get_settings().broker_url)} ({exc}); "
            f"{what}: check DISPATCHER_BROKER_URL and that Redis is running"
        ) from None


def enqueue(event: Event) -> None:
    """Put one validated event on its lane's queue; raise ``BrokerUnavailable``."""
    queue = queue_for(lane_for_event(event.type))
    _send_task(TASK_NAME, _payload(event), queue, "nothing was enqueued")
    metrics.PUBLISHED.labels(type=event.type).inc()


def publish_test_send(group: str, kind: str, address: str, locale: str | None, actor: str) -> str:
    """Enqueue a test send of one e-mail kind to ``address``; return its event_id.

    The caller checks that the group exists; the kind, address and locale are
    checked here, and again by the worker.
    """
    import uuid

    from dispatcher.kinds import KIND_BY_NAME
    from dispatcher.service import TestSend

    request = {
        "event_id": f"test-{uuid.uuid4().hex}",
        "group": group,
        "kind": kind,
        "address": address,
        "locale": locale,
        "actor": actor,
    }
    test = TestSend.parse(request)
    queue = queue_for(KIND_BY_NAME[test.kind].lane)
    _send_task("dispatcher.test_send", request, queue, "the test send was not enqueued")
    return test.event_id


def publish(event: Mapping[str, Any]) -> str:
    """Validate one event and enqueue it; return its ``event_id``."""
    parsed = parse_event(dict(event) if isinstance(event, Mapping) else event)
    enqueue(parsed)
    return parsed.event_id


def validate_all(events: Iterable[object], labels: Iterable[str] | None = None) -> list[Event]:
    """Parse every event; raise one ``InvalidEvent`` listing all problems, by position."""
    parsed: list[Event] = []
    errors: list[FieldError] = []
    names = iter(labels) if labels is not None else None
    for index, raw in enumerate(events):
        label = next(names) if names is not None else f"[{index}]"
        try:
            parsed.append(parse_event(raw))
        except InvalidEvent as exc:
            errors.extend(
                FieldError(f"{label}.{e.path}" if e.path else label, e.message) for e in exc.errors
            )
    if errors:
        raise InvalidEvent(errors)
    return parsed


# Events per batch task: enough to share the database work tenfold, few
# enough that a password reset never waits long behind a batch in progress.
BATCH_SIZE = 10


def publish_many(events: Iterable[object]) -> list[str]:
    """Validate all events first; enqueue them only if every one is valid.

    They travel in batches per lane (task ``dispatcher.handle_events``), which
    lets a worker record a batch in one transaction.
    """
    parsed = validate_all(events)
    enqueue_many(parsed)
    return [event.event_id for event in parsed]


def enqueue_many(events: Sequence[Event]) -> None:
    """Put validated events on their lanes' queues, in batches."""
    by_lane: dict[str, list[Event]] = {}
    for event in events:
        by_lane.setdefault(queue_for(lane_for_event(event.type)), []).append(event)
    done = 0
    for queue, items in by_lane.items():
        for start in range(0, len(items), BATCH_SIZE):
            chunk = items[start : start + BATCH_SIZE]
            what = (
                "nothing was enqueued"
                if done == 0
                else f"{done} of {len(events)} events were enqueued before; publishing all of "
                "them again is safe (event_id makes it idempotent)"
            )
            _send_task(BATCH_TASK_NAME, [_payload(event) for event in chunk], queue, what)
            done += len(chunk)
            for event in chunk:
                metrics.PUBLISHED.labels(type=event.type).inc()
