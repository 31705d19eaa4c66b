"""The portal backend's client: validate, then enqueue (CONTRACT §4)."""

from __future__ import annotations

import contextlib
import time
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import kombu.pools
import redis
from kombu.exceptions import OperationalError

from dispatcher.broker.app import MAX_COUNTDOWN, TRANSPORT_OPTIONS, app
from dispatcher.broker.journal import Entry, Journal, Rescue, rescue
from dispatcher.broker.messages import (
    HANDLE_EVENT,
    HANDLE_EVENTS,
    SEND_DELIVERY,
    SEND_WEBHOOKS,
    SWEEP,
    TEST_SEND,
)
from dispatcher.broker.queues import LAST_SWEEP, WEBHOOKS_ASKED, queue_depth, redis_for_url
from dispatcher.domain.events import Event, parse_event, validate_all
from dispatcher.domain.follow_ups import FollowUp
from dispatcher.domain.kinds import (
    KIND_BY_NAME,
    MAINTENANCE_QUEUE,
    WEBHOOKS_QUEUE,
    lane_for_event,
    queue_for,
)
from dispatcher.domain.test_send import TestSend
from dispatcher.errors import BrokerUnavailable, PartlyEnqueued
from dispatcher.ops import metrics, tracing
from dispatcher.settings import redact_url

TASK_NAME = HANDLE_EVENT
BATCH_TASK_NAME = HANDLE_EVENTS
# Bounded: a publisher must learn within about two seconds that Redis is down.
_RETRY_POLICY = {"max_retries": 2, "interval_start": 0, "interval_step": 0.2, "interval_max": 0.4}


def _payload(event: Event) -> dict[str, Any]:
    return event.model_dump(mode="json", exclude_none=True)


_journal: Journal | None = None


def journal() -> Journal | None:
    """This process's journal on the broker's Redis; None for another broker."""
    global _journal  # noqa: PLW0603 - one client per process, reset by use_broker
    if _journal is not None:
        return _journal

    options = app.conf.broker_transport_options
    client = redis_for_url(str(app.conf.broker_url), options.get("master_name"))
    if client is None:
        return None
    prefix = str(app.conf.broker_transport_options.get("global_keyprefix", ""))
    # Behind Sentinel, an accepted event is on a replica before publish() returns.
    replicas = 1 if str(app.conf.broker_url).startswith("sentinel://") else 0
    _journal = Journal(client, prefix, replicas)
    return _journal


def drop_journal() -> None:
    """Forget the journal client; ``use_broker`` calls this when the broker changes."""
    global _journal  # noqa: PLW0603 - one client per process, reset by use_broker
    if _journal is not None:
        _journal.client.close()
    _journal = None


def _file(entries: Sequence[Entry], what: str) -> None:
    """File events in the journal before they are enqueued; raise ``BrokerUnavailable``."""
    target = journal()
    if target is None:
        return

    try:
        target.file(entries, time.time())
    except redis.RedisError as exc:
        raise _unavailable(exc, what) from None


def _unfile(entries: Sequence[Entry]) -> None:
    """Best effort after a failed enqueue; a leftover entry is only sent once more."""
    target = journal()
    if target is None:
        return

    with contextlib.suppress(redis.RedisError):
        target.forget(e.event_id for e in entries)


def _unavailable(exc: Exception, what: str) -> BrokerUnavailable:
    return BrokerUnavailable(
        f"cannot reach the broker at {redact_url(str(app.conf.broker_url))} ({exc}); "
        f"{what}: check DISPATCHER_BROKER_URL and that Redis is running"
    )


def argsrepr(argument: Any) -> str:
    """What monitoring (Flower, ``celery events``) shows of a task's argument.

    Only event ids and types: an event carries a person's name and address,
    which have no place in a monitoring tool. Celery's default, a repr of the
    whole argument, also cost a tenth of publish()'s CPU.
    """
    events = argument if isinstance(argument, list) else [argument]
    shown = [
        f"{e.get('event_id')} ({e.get('type')})" if isinstance(e, Mapping) else "?"
        for e in events[:3]
    ]
    more = f", ... {len(events)} events" if len(events) > 3 else ""
    return f"[{', '.join(shown)}{more}]"


@tracing.traced_publish
def _send_task(task: str, argument: Any, queue: str, what: str) -> None:
    """Send one task message; raise ``BrokerUnavailable`` saying what was not enqueued."""
    try:
        app.send_task(
            task,
            args=[argument],
            argsrepr=argsrepr(argument),
            kwargsrepr="{}",
            queue=queue,
            routing_key=queue,
            retry=True,
            retry_policy=_RETRY_POLICY,
            # Lets the worker time event-to-acceptance; optional for other clients.
            headers={"published_at": time.time()},
        )
    except (OperationalError, OSError) as exc:
        raise _unavailable(exc, what) from None


def enqueue(event: Event) -> None:
    """Put one validated event on its lane's queue; raise ``BrokerUnavailable``."""
    queue = queue_for(lane_for_event(event.type))
    payload = _payload(event)
    entries = [Entry(event.event_id, queue, payload)]
    _file(entries, "nothing was enqueued")
    try:
        _send_task(TASK_NAME, payload, queue, "nothing was enqueued")
    except BrokerUnavailable:
        _unfile(entries)
        raise
    metrics.PUBLISHED.labels(type=event.type).inc()


def publish_test_send(group: str, kind: str, address: str, locale: str | None, actor: str) -> str:
    """Enqueue a test send of one e-mail kind to ``address``; return its event_id.

    The caller checks that the group exists; the kind, address and locale are
    checked here, and again by the worker.
    """
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
    _send_task(TEST_SEND, request, queue, "the test send was not enqueued")
    return test.event_id


def schedule(follow_ups: Iterable[FollowUp]) -> None:
    """Enqueue retries that fit below the visibility timeout; the sweeper takes the rest.

    A countdown longer than the broker's visibility timeout would run twice
    (the message comes back while it waits), so longer waits stay in the
    database, where the sweeper finds them when they are due.
    """
    for item in follow_ups:
        if item.delay <= MAX_COUNTDOWN:
            queue = queue_for(item.lane)
            app.send_task(
                SEND_DELIVERY,
                args=(item.delivery_id,),
                countdown=item.delay,
                queue=queue,
                routing_key=queue,
            )


def postpone_events(
    payloads: Sequence[Any], queue: str, countdown: float, retries: int, published_at: float | None
) -> None:
    """Enqueue events again as one batch task after ``countdown`` seconds (an outage).

    Used for events that arrived one message each and were taken as a batch
    by a worker; from here on they retry as the batch task does.
    """
    app.send_task(
        BATCH_TASK_NAME,
        args=[list(payloads)],
        argsrepr=argsrepr(list(payloads)),
        kwargsrepr="{}",
        queue=queue,
        routing_key=queue,
        countdown=min(countdown, MAX_COUNTDOWN),
        retries=retries,
        retry=True,
        retry_policy=_RETRY_POLICY,
        headers={"published_at": published_at} if published_at is not None else {},
    )


# How long a request for a webhook task holds back further ones; after that a
# lost or long-queued task is asked for again (the sweeper asks too).
WEBHOOKS_ASK_SECONDS = 60
# How long a webhook task asked for by new outcomes waits before it starts, so
# that the outcomes of the batches that end meanwhile go in the same round
# (one claim, one update) instead of a round each.
WEBHOOKS_GATHER_SECONDS = 1.0


def send_webhooks_soon(gather: float = WEBHOOKS_GATHER_SECONDS) -> None:
    """Ask a worker to send the webhooks that are due (the outbox holds them meanwhile).

    One task is asked for at a time: while one is queued and has not started,
    it will send what is due then, so every batch of e-mails does not add a
    task of its own (on the everyday path that was one task per few e-mails).
    The task starts ``gather`` seconds later, to take more at once; a webhook
    is never more than that late for it. Best effort: if the broker cannot
    take the message, the sweeper asks again.
    """
    target = journal()
    if target is not None:
        try:
            asked = target.client.set(
                f"{target.prefix}{WEBHOOKS_ASKED}", "1", nx=True, ex=WEBHOOKS_ASK_SECONDS
            )
        except redis.RedisError:
            asked = True  # Unknown: ask anyway; a spare task finds nothing due.
        if not asked:
            return
    with contextlib.suppress(OperationalError, OSError):
        app.send_task(
            SEND_WEBHOOKS,
            queue=WEBHOOKS_QUEUE,
            routing_key=WEBHOOKS_QUEUE,
            countdown=gather if gather > 0 else None,
        )


def webhooks_round_started() -> None:
    """A webhook task has started: what becomes due from now on needs a task of its own."""
    target = journal()
    if target is None:
        return
    with contextlib.suppress(redis.RedisError):
        target.client.delete(f"{target.prefix}{WEBHOOKS_ASKED}")


def request_sweep(expires: float) -> None:
    """Enqueue one sweep; it lapses after ``expires`` seconds, when the next one is due."""
    app.send_task(
        SWEEP,
        queue=MAINTENANCE_QUEUE,
        routing_key=MAINTENANCE_QUEUE,
        expires=expires,
        retry=True,
        retry_policy=_RETRY_POLICY,
    )


def note_sweep(now: float) -> None:
    """Remember when a sweep ran, for ``dispatcher status`` (best effort)."""
    target = journal()
    if target is None:
        return
    with contextlib.suppress(redis.RedisError):
        target.client.set(f"{target.prefix}{LAST_SWEEP}", repr(now), ex=86_400)


def publish(event: Mapping[str, Any]) -> str:
    """Validate one event and enqueue it; return its ``event_id``."""
    parsed = parse_event(dict(event) if isinstance(event, Mapping) else event)
    enqueue(parsed)
    return parsed.event_id


# Events per batch task: enough to share a batch's fixed cost (about 2 ms of
# CPU: two transactions, Redis round trips, the task) 25-fold, few enough that
# a password reset waits at most about 70 ms behind a batch in progress.
# Outcomes are still written every ten e-mails (orchestrator.FINISH_EVERY).
BATCH_SIZE = 25


def publish_many(events: Iterable[object]) -> list[str]:
    """Validate all events first; enqueue them only if every one is valid.

    They travel in batches per lane (task ``dispatcher.handle_events``), which
    lets a worker record a batch in one transaction.
    """
    parsed = validate_all(events)
    enqueue_many(parsed)
    return [event.event_id for event in parsed]


def enqueue_many(events: Sequence[Event]) -> None:
    """Put validated events on their lanes' queues, in batches of ``BATCH_SIZE``.

    Raises ``BrokerUnavailable`` when nothing was enqueued, and
    ``PartlyEnqueued`` (saying how many were) when the broker failed midway.
    """
    by_lane: dict[str, list[Event]] = {}
    for event in events:
        by_lane.setdefault(queue_for(lane_for_event(event.type)), []).append(event)
    done = 0
    for queue, items in by_lane.items():
        for start in range(0, len(items), BATCH_SIZE):
            chunk = items[start : start + BATCH_SIZE]
            payloads = [_payload(event) for event in chunk]
            entries = [Entry(e.event_id, queue, p) for e, p in zip(chunk, payloads, strict=True)]
            try:
                _file(entries, "nothing was enqueued")
                try:
                    _send_task(BATCH_TASK_NAME, payloads, queue, "nothing was enqueued")
                except BrokerUnavailable:
                    _unfile(entries)
                    raise
            except BrokerUnavailable:
                if done == 0:
                    raise
                where = f"cannot reach the broker at {redact_url(str(app.conf.broker_url))}"
                raise PartlyEnqueued(done, len(events), where) from None
            done += len(chunk)
            for event in chunk:
                metrics.PUBLISHED.labels(type=event.type).inc()


JOURNAL_ROUND = 5000


def rescue_journal(recorded: Callable[[list[str]], set[str]], grace: float) -> Rescue | None:
    """Enqueue again the accepted events that never reached the record (see journal.py)."""
    target = journal()
    if target is None:
        return None

    forgotten = waiting = 0
    requeued: list[Entry] = []
    # Rounds of 5,000 until nothing old is left, so that the journal keeps up
    # with any rate; the bound only keeps one sweep from running for ever.
    for _ in range(50):
        try:
            result = rescue(
                target,
                recorded,
                lambda queue: queue_depth(target.client, target.prefix, queue) == 0,
                time.time(),
                grace,
                limit=JOURNAL_ROUND,
            )
        except redis.RedisError as exc:
            raise BrokerUnavailable(f"the journal cannot be read: {exc}") from None
        for entry in result.requeued:
            _send_task(TASK_NAME, entry.event, entry.queue, "it stays in the journal")
            metrics.RESCUED.inc()
        forgotten += result.forgotten
        waiting += result.waiting
        requeued.extend(result.requeued)
        if result.forgotten + len(result.requeued) + result.waiting < JOURNAL_ROUND:
            break
        if result.forgotten == 0:
            break  # Only waiting entries are left at the front.
    return Rescue(forgotten, requeued, waiting)


def use_broker(url: str, prefix: str = "", master_name: str | None = None) -> None:
    """Point this process's publisher at another broker, dropping pooled connections.

    For processes that learn their broker after import (tests that run their
    own Redis). Workers read DISPATCHER_BROKER_URL at start instead.
    """
    if app.pool is not None:
        app.pool.force_close_all()
    # kombu keeps pools per connection URL in a registry of its own; a closed
    # pool left there would be handed out again when the URL comes back.
    kombu.pools.reset()
    app.conf.broker_url = url
    options: dict[str, Any] = {**TRANSPORT_OPTIONS, "global_keyprefix": prefix}
    if master_name:
        options["master_name"] = master_name
    else:
        options.pop("master_name", None)
    app.conf.broker_transport_options = options
    # Celery resets its connection and producer pools this way after a fork.
    app._after_fork()
    drop_journal()
