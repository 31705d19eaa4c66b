"""Single events taken several at a time while the worker is busy.

The portal publishes most events one message each (``dispatcher.handle_event``,
CONTRACT §4). Handled one by one, every event paid for its own transaction,
its own commits and Celery's per-task bookkeeping, which under load was most
of a worker's work. This is the consumer's strategy for that task:

- When a pool process is free, a message goes to it at once, so an event is
  never held back to wait for others.
- While every process is busy, the messages that arrive wait here, per queue,
  and the next free process takes up to ``DISPATCHER_EVENT_BATCH_SIZE`` of
  one queue (interactive first) as one batch: ``Dispatcher.handle_events``
  records them in one transaction. The worker widens its prefetch window for
  the waiting messages, up to one batch per process, so that Redis hands them
  over; beyond that they stay in Redis for other workers.

Delivery semantics are those of a task with late acknowledgement:

- a message is acknowledged only after its batch has run (recorded, sent and
  outcomes written) or after its events were enqueued again for an outage;
- the messages of a batch whose process died are rejected with requeue (as
  ``task_reject_on_worker_lost``) and come back at once, to be deduplicated;
- messages still waiting when the worker stops are never acknowledged, and
  Redis gives them back (kombu restores a channel's unacknowledged messages).

Messages with an ETA or an expiry (retries, other clients' options) and
revoked ones take Celery's own path, as do all with a batch size of 1.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from billiard.exceptions import SoftTimeLimitExceeded, TimeLimitExceeded, WorkerLostError
from celery import Celery, Task
from celery.worker import state as worker_state
from celery.worker.control import inspect_command
from celery.worker.strategy import default as default_strategy

from dispatcher.broker import publisher
from dispatcher.broker.app import CONSUME_ORDER, TASK_SOFT_TIME_LIMIT, TASK_TIME_LIMIT
from dispatcher.broker.messages import HANDLE_EVENT
from dispatcher.ops import metrics, tracing
from dispatcher.settings import get_settings
from dispatcher.worker.bootstrap import service
from dispatcher.worker.tasks import OUTAGES, after, outage_delay

log = logging.getLogger("dispatcher.worker.batching")

# While messages wait and no process is free, the buffer checks this often
# whether one has become free (a task of another kind may have ended; batches
# tell it themselves).
POLL_SECONDS = 0.005
# Where publish() puts its trace context (dispatcher/ops/tracing.py).
TRACE_HEADERS = ("traceparent", "tracestate")


@dataclass(frozen=True, slots=True)
class Waiting:
    """A message taken from Redis, not yet handed to a process."""

    event: Any
    published_at: float | None
    retries: int
    ack: Callable[..., Any]
    reject: Callable[..., Any]
    # Whether the prefetch window was widened for this message.
    widened: bool
    # Its trace context (traceparent, tracestate), for the batch's span.
    trace: dict[str, str]


# The consumer's batcher, for the remote-control command below (one per worker
# process; a reconnecting consumer makes a new one).
_current: EventBatcher | None = None


@inspect_command()
def dispatcher_batching(state: Any, **_: Any) -> dict[str, int]:
    """How many single-event messages wait in this worker and how many batches run.

    ``celery inspect dispatcher_batching``; ``dispatcher worker-check`` uses it.
    """
    if _current is None:
        return {"waiting": 0, "in_flight": 0}
    return {"waiting": _current.count, "in_flight": _current.in_flight}


def strategy(task: Task, app: Celery, consumer: Any, **kwargs: Any) -> Callable[..., Any]:
    """Celery's hook (``Task.Strategy``): the handler for ``dispatcher.handle_event``."""
    default: Callable[..., Any] = default_strategy(task, app, consumer, **kwargs)
    size = get_settings().event_batch_size
    if size <= 1:
        return default
    global _current  # noqa: PLW0603 - one batcher per worker process, asked by remote control
    _current = EventBatcher(consumer, size, default)
    return _current


class EventBatcher:
    """Keeps single-event messages while the pool is busy; hands them over as batches."""

    def __init__(self, consumer: Any, size: int, default: Callable[..., Any]) -> None:
        self.consumer = consumer
        self.pool = consumer.pool
        self.size = size
        self.default = default
        self.connection_errors = tuple(consumer.connection_errors)
        self.waiting: dict[str, deque[Waiting]] = {}
        self.count = 0
        self.in_flight = 0
        self.widened = 0
        self._poll: Any = None
        self._pumping = False
        self._again = False

    # Messages in ----------------------------------------------------------

    def __call__(
        self, message: Any, body: Any, ack: Any, reject: Any, callbacks: Any, **kwargs: Any
    ) -> Any:
        headers = message.headers
        if (
            not isinstance(headers, dict)
            or "task" not in headers
            or headers.get("eta")
            or headers.get("expires")
            or headers.get("id") in worker_state.revoked
        ):
            return self.default(message, body, ack, reject, callbacks, **kwargs)
        # The guard (dispatcher.worker.consumer) has checked the body already:
        # [args, kwargs, embed] with exactly one argument, the event.
        args = message.payload[0]
        published_at = headers.get("published_at")
        retries = headers.get("retries")
        queue = (message.delivery_info or {}).get("routing_key") or CONSUME_ORDER[0]
        widen = self.widened < self.size * self._processes()
        if widen:
            self.widened += 1
            self.consumer.qos.increment_eventually()
        self.waiting.setdefault(queue, deque()).append(
            Waiting(
                args[0],
                published_at if isinstance(published_at, int | float) else None,
                retries if isinstance(retries, int) else 0,
                ack,
                reject,
                widen,
                {k: v for k in TRACE_HEADERS if isinstance(v := headers.get(k), str)},
            )
        )
        self.count += 1
        self._pump()
        return None

    # Batches out ----------------------------------------------------------

    def _processes(self) -> int:
        processes = getattr(self.pool, "num_processes", None) or getattr(self.pool, "limit", 1)
        return max(1, int(processes or 1))

    def _free(self) -> int:
        # Celery's own requests in the pool are in reserved_requests until
        # they end; batches are counted here.
        return self._processes() - len(worker_state.reserved_requests) - self.in_flight

    def _pump(self) -> None:
        # Re-entrant calls (a pool that runs a batch at once, like solo)
        # are folded into the running loop.
        if self._pumping:
            self._again = True
            return
        self._pumping = True
        try:
            self._again = True
            while self._again:
                self._again = False
                while self.count and self._free() > 0:
                    self._start(*self._take())
        finally:
            self._pumping = False
        if self.count and self._poll is None:
            self._poll = self.consumer.timer.call_after(POLL_SECONDS, self._tick)

    def _tick(self) -> None:
        self._poll = None
        self._pump()

    def _take(self) -> tuple[str, list[Waiting]]:
        """Up to one batch from the first queue in consumption order that has messages."""
        ordered = [q for q in CONSUME_ORDER if self.waiting.get(q)]
        ordered += [q for q, items in self.waiting.items() if items and q not in ordered]
        queue = ordered[0]
        items = self.waiting[queue]
        batch = [items.popleft() for _ in range(min(self.size, len(items)))]
        self.count -= len(batch)
        return queue, batch

    def _start(self, queue: str, batch: list[Waiting]) -> None:
        self.in_flight += 1
        self.pool.apply_async(
            run_batch,
            (
                [item.event for item in batch],
                [item.published_at for item in batch],
                queue,
                max(item.retries for item in batch),
                [item.trace for item in batch],
            ),
            callback=lambda _result: self._done(batch),
            error_callback=lambda einfo: self._failed(queue, batch, einfo),
            soft_timeout=TASK_SOFT_TIME_LIMIT,
            timeout=TASK_TIME_LIMIT,
        )

    def _settle(self, batch: list[Waiting], settle: Callable[[Waiting], None]) -> None:
        self.in_flight -= 1
        # Counted as tasks in the worker's stats (``celery inspect stats``),
        # which health checks read to see that a worker makes progress.
        worker_state.total_count[HANDLE_EVENT] += len(batch)
        worker_state.all_total_count[0] += len(batch)
        for item in batch:
            settle(item)
            if item.widened:
                self.widened -= 1
                self.consumer.qos.decrement_eventually()
        self._pump()

    def _done(self, batch: list[Waiting]) -> None:
        self._settle(batch, lambda item: item.ack(log, self.connection_errors))

    def _failed(self, queue: str, batch: list[Waiting], einfo: Any) -> None:
        # billiard wraps the exception to carry its traceback across processes.
        exc = getattr(einfo, "exception", einfo)
        exc = getattr(exc, "exc", exc)
        if isinstance(exc, WorkerLostError):
            # As task_reject_on_worker_lost: back to the queue at once.
            log.error("a worker process died during a batch of %d events: %s", len(batch), exc)
            self._settle(batch, lambda item: item.reject(log, self.connection_errors, True))
            return
        if not isinstance(exc, TimeLimitExceeded):
            # As a task that raises: acknowledged, with its traceback logged.
            trace = getattr(einfo, "traceback", exc)
            log.error("a batch of %d events failed: %s", len(batch), trace)
            self._done(batch)
            return
        # The hard time limit: the batch is tried once more as a batch task,
        # which is acknowledged like any task if it runs out of time again.
        log.error("a batch of %d events ran out of time: %s", len(batch), exc)
        try:
            publisher.postpone_events(
                [item.event for item in batch],
                queue,
                1.0,
                max(item.retries for item in batch) + 1,
                _earliest(item.published_at for item in batch),
            )
        except Exception:
            log.exception("could not enqueue a stopped batch again; it comes back from Redis")
            self._settle(batch, lambda item: item.reject(log, self.connection_errors, True))
            return
        self._done(batch)


def _earliest(times: Any) -> float | None:
    known = [t for t in times if t is not None]
    return min(known) if known else None


# In the pool process --------------------------------------------------------


def run_batch(
    events: Sequence[Any],
    published: Sequence[float | None],
    queue: str,
    retries: int,
    traces: Sequence[dict[str, str]] = (),
) -> int:
    """Handle events that arrived one message each as one batch; return how many."""
    with tracing.consumer_span("run/dispatcher.handle_event", traces, events):
        return _run_batch(events, published, queue, retries)


def _run_batch(
    events: Sequence[Any], published: Sequence[float | None], queue: str, retries: int
) -> int:
    metrics.EVENT_BATCH_SIZE.observe(len(events))
    try:
        outcomes = service().handle_events(events, published_each=published)
    except (*OUTAGES, SoftTimeLimitExceeded) as exc:
        log.warning("batch of %d events postponed: %s", len(events), exc)
        publisher.postpone_events(
            events, queue, outage_delay(retries), retries + 1, _earliest(published)
        )
        return len(events)
    except Exception:
        # A fault of one event must not take the others with it.
        log.exception("a batch of %d events failed; each is handled on its own", len(events))
        for event, at in zip(events, published, strict=True):
            _run_one(event, at, queue, retries)
        return len(events)
    after(f for outcome in outcomes for f in outcome.follow_ups)
    return len(events)


def _run_one(event: Any, published_at: float | None, queue: str, retries: int) -> None:
    try:
        outcome = service().handle_event(event, published_at)
    except OUTAGES as exc:
        log.warning("event postponed: %s", exc)
        publisher.postpone_events([event], queue, outage_delay(retries), retries + 1, published_at)
        return
    except Exception:
        # As a task that raises: acknowledged and logged with its traceback.
        log.exception("an event failed in a worker")
        return
    after(outcome.follow_ups)
