"""The batching strategy's bookkeeping, with a pool and a consumer that only record.

The end-to-end behaviour (a real worker, Redis, a sink) is in
tests/integration/test_batching.py and the fault suite; here each rule of the
strategy is pinned: hand over at once when a process is free, keep messages
per queue while none is, interactive first, a bounded prefetch window,
acknowledge after the batch, requeue when its process died, and one retry as a
batch task after a hard time limit.
"""

from __future__ import annotations

from typing import Any

import pytest
from billiard.einfo import ExceptionInfo
from billiard.exceptions import SoftTimeLimitExceeded, TimeLimitExceeded, WorkerLostError
from celery.worker import state as worker_state

from dispatcher.broker import publisher
from dispatcher.broker.app import CONSUME_ORDER
from dispatcher.errors import StoreUnavailable
from dispatcher.worker import batching
from dispatcher.worker.tasks import outage_delay

INTERACTIVE, BULK = CONSUME_ORDER[0], CONSUME_ORDER[2]


class Message:
    def __init__(self, number: int, queue: str, **headers: Any) -> None:
        self.headers = {"task": "dispatcher.handle_event", "id": f"id-{number}", **headers}
        self.payload = [[{"event_id": f"e-{number}"}], {}, {}]
        self.delivery_info = {"routing_key": queue}
        self.outcome: str | None = None


class Pool:
    num_processes = 2

    def __init__(self) -> None:
        self.jobs: list[dict[str, Any]] = []

    def apply_async(self, target: Any, args: tuple[Any, ...], **options: Any) -> None:
        self.jobs.append({"target": target, "args": args, **options})


class Qos:
    def __init__(self) -> None:
        self.value = 0

    def increment_eventually(self) -> None:
        self.value += 1

    def decrement_eventually(self) -> None:
        self.value -= 1


class Timer:
    def __init__(self) -> None:
        self.calls: list[Any] = []

    def call_after(self, seconds: float, function: Any) -> object:
        self.calls.append(function)
        return object()


class Consumer:
    connection_errors: tuple[type[BaseException], ...] = ()

    def __init__(self) -> None:
        self.pool = Pool()
        self.qos = Qos()
        self.timer = Timer()


@pytest.fixture
def setup() -> tuple[batching.EventBatcher, Consumer, list[Message]]:
    consumer = Consumer()
    defaulted: list[Message] = []
    batcher = batching.EventBatcher(
        consumer, 3, lambda message, *args, **kwargs: defaulted.append(message)
    )
    return batcher, consumer, defaulted


def receive(batcher: batching.EventBatcher, message: Message) -> None:
    def ack(*_: Any) -> None:
        message.outcome = "ack"

    def reject(_log: Any, _errors: Any, requeue: bool = False) -> None:
        message.outcome = "requeue" if requeue else "reject"

    batcher(message, None, ack, reject, set())


def events(job: dict[str, Any]) -> list[str]:
    return [event["event_id"] for event in job["args"][0]]


def test_a_free_process_takes_a_message_at_once(setup: Any) -> None:
    batcher, consumer, _ = setup
    receive(batcher, Message(1, INTERACTIVE))
    assert [events(job) for job in consumer.pool.jobs] == [["e-1"]]
    assert consumer.pool.jobs[0]["target"] is batching.run_batch


def test_while_all_are_busy_messages_wait_and_go_as_one_batch_interactive_first(
    setup: Any,
) -> None:
    batcher, consumer, _ = setup
    receive(batcher, Message(1, BULK))
    receive(batcher, Message(2, BULK))
    assert len(consumer.pool.jobs) == 2  # both processes busy now
    waiting = [Message(n, BULK) for n in (3, 4, 5, 6)] + [Message(7, INTERACTIVE)]
    for message in waiting:
        receive(batcher, message)
    assert len(consumer.pool.jobs) == 2
    assert consumer.timer.calls  # it looks again soon for a free process
    consumer.pool.jobs[0]["callback"](1)
    assert events(consumer.pool.jobs[2]) == ["e-7"]
    consumer.pool.jobs[1]["callback"](1)
    # At most the batch size (3) from one queue.
    assert events(consumer.pool.jobs[3]) == ["e-3", "e-4", "e-5"]
    consumer.pool.jobs[2]["callback"](1)
    assert events(consumer.pool.jobs[4]) == ["e-6"]


def test_messages_are_acknowledged_only_when_their_batch_has_run(setup: Any) -> None:
    batcher, consumer, _ = setup
    messages = [Message(n, INTERACTIVE) for n in range(5)]
    for message in messages:
        receive(batcher, message)
    assert all(m.outcome is None for m in messages)
    done_before = worker_state.total_count["dispatcher.handle_event"]
    consumer.pool.jobs[0]["callback"](1)
    assert [m.outcome for m in messages][:1] == ["ack"]
    assert all(m.outcome is None for m in messages[1:])
    # Counted as tasks done, which health checks read (celery inspect stats).
    consumer.pool.jobs[2]["callback"](1)
    assert worker_state.total_count["dispatcher.handle_event"] == done_before + 1 + 3


def test_remote_control_tells_what_waits(setup: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    batcher, _, _ = setup
    monkeypatch.setattr(batching, "_current", batcher)
    for number in range(4):
        receive(batcher, Message(number, INTERACTIVE))
    assert batching.dispatcher_batching(None) == {"waiting": 2, "in_flight": 2}


def test_the_prefetch_window_widens_for_waiting_messages_up_to_a_batch_per_process(
    setup: Any,
) -> None:
    batcher, consumer, _ = setup
    for number in range(12):
        receive(batcher, Message(number, INTERACTIVE))
    # Batch size 3 x 2 processes.
    assert consumer.qos.value == 6
    while any("done" not in job for job in consumer.pool.jobs):
        for job in list(consumer.pool.jobs):
            if "done" not in job:
                job["done"] = True
                job["callback"](1)
    assert consumer.qos.value == 0
    assert batcher.count == 0


def test_a_batch_whose_process_died_comes_back_to_the_queue(setup: Any) -> None:
    batcher, consumer, _ = setup
    message = Message(1, INTERACTIVE)
    receive(batcher, message)
    try:
        raise WorkerLostError("Worker exited prematurely: signal 9 (SIGKILL).")
    except WorkerLostError:
        consumer.pool.jobs[0]["error_callback"](ExceptionInfo())
    assert message.outcome == "requeue"
    assert batcher.in_flight == 0


def test_a_batch_out_of_time_is_enqueued_once_more_as_a_batch_task(
    setup: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    batcher, consumer, _ = setup
    postponed: list[tuple[Any, ...]] = []
    monkeypatch.setattr(publisher, "postpone_events", lambda *args: postponed.append(args))
    messages = [Message(1, BULK, published_at=100.0), Message(2, BULK, published_at=99.0)]
    receive(batcher, messages[0])
    receive(batcher, Message(9, BULK))
    receive(batcher, messages[1])
    consumer.pool.jobs[0]["callback"](1)
    try:
        raise TimeLimitExceeded(75)
    except TimeLimitExceeded:
        consumer.pool.jobs[2]["error_callback"](ExceptionInfo())
    assert postponed == [([{"event_id": "e-2"}], BULK, 1.0, 1, 99.0)]
    assert messages[1].outcome == "ack"


def test_messages_with_an_eta_or_expiry_take_celerys_own_path(setup: Any) -> None:
    batcher, consumer, defaulted = setup
    later = Message(1, INTERACTIVE, eta="2026-12-04T10:00:00+00:00", retries=1)
    expiring = Message(2, INTERACTIVE, expires="2026-12-04T10:00:00+00:00")
    receive(batcher, later)
    receive(batcher, expiring)
    assert defaulted == [later, expiring]
    assert consumer.pool.jobs == []


# In the pool process ----------------------------------------------------------


class Outcome:
    def __init__(self) -> None:
        self.follow_ups: list[Any] = []


class Service:
    def __init__(self, fail: BaseException | None = None, bad: str | None = None) -> None:
        self.fail = fail
        self.bad = bad
        self.single: list[str] = []

    def handle_events(self, events: list[Any], published_each: Any) -> list[Outcome]:
        if self.fail is not None:
            raise self.fail
        return [Outcome() for _ in events]

    def handle_event(self, event: Any, published_at: Any) -> Outcome:
        if event["event_id"] == self.bad:
            raise RuntimeError("a bug")
        self.single.append(event["event_id"])
        return Outcome()


@pytest.fixture
def postponed(monkeypatch: pytest.MonkeyPatch) -> list[tuple[Any, ...]]:
    calls: list[tuple[Any, ...]] = []
    monkeypatch.setattr(publisher, "postpone_events", lambda *args: calls.append(args))
    monkeypatch.setattr(batching, "after", list)
    return calls


@pytest.mark.parametrize("failure", [StoreUnavailable("database down"), SoftTimeLimitExceeded()])
def test_an_outage_postpones_the_whole_batch(
    failure: BaseException, postponed: list[Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(batching, "service", lambda: Service(fail=failure))
    batch = [{"event_id": "a"}, {"event_id": "b"}]
    assert batching.run_batch(batch, [5.0, 4.0], BULK, 2) == 2
    assert postponed == [(batch, BULK, outage_delay(2), 3, 4.0)]


def test_a_fault_in_a_batch_is_narrowed_to_its_event(
    postponed: list[Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    service = Service(fail=RuntimeError("a bug somewhere"), bad="b")
    monkeypatch.setattr(batching, "service", lambda: service)
    batch = [{"event_id": "a"}, {"event_id": "b"}, {"event_id": "c"}]
    assert batching.run_batch(batch, [None, None, None], BULK, 0) == 3
    assert service.single == ["a", "c"]
    assert postponed == []
