"""ops/tracing.py in one process: off by default, spans and context when on, JSON API logs."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from typing import Any

import pytest
from opentelemetry import propagate, trace
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from dispatcher.ops import logs, tracing
from tests.support.tracing import memory_exporter


@pytest.fixture
def memory() -> Iterator[InMemorySpanExporter]:
    exporter = memory_exporter()
    exporter.clear()
    yield exporter
    exporter.clear()


@pytest.fixture
def endpoint(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:9")
    tracing.reset()
    yield
    tracing.reset()


def test_without_an_endpoint_nothing_is_traced(
    monkeypatch: pytest.MonkeyPatch, memory: InMemorySpanExporter
) -> None:
    for name in tracing.ENDPOINT_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    tracing.reset()
    calls: list[tuple[Any, ...]] = []

    @tracing.traced_publish
    def send(task: str, argument: Any, queue: str, what: str) -> None:
        calls.append((task, argument, queue, what))

    send("dispatcher.handle_event", {"event_id": "x"}, "q", "w")
    assert calls == [("dispatcher.handle_event", {"event_id": "x"}, "q", "w")]
    assert tracing.start("test") is False
    assert memory.get_finished_spans() == ()
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:9")
    monkeypatch.setenv("OTEL_SDK_DISABLED", "true")
    assert tracing.enabled() is False
    tracing.reset()


@pytest.mark.usefixtures("endpoint")
def test_publish_spans_name_the_events_and_their_context_travels_in_the_headers(
    memory: InMemorySpanExporter,
) -> None:
    sent: list[dict[str, str]] = []

    @tracing.traced_publish
    def send(task: str, argument: Any, queue: str, what: str) -> None:
        headers: dict[str, str] = {}
        tracing._inject(headers=headers)  # as Celery's before_task_publish does
        sent.append(headers)

    send("dispatcher.handle_event", {"event_id": "e-1"}, "dispatcher.interactive", "x")
    send("dispatcher.handle_events", [{"event_id": "e-2"}, {"event_id": "e-3"}], "q", "x")
    single, batch = memory.get_finished_spans()
    assert single.name == "publish dispatcher.handle_event"
    assert single.kind is trace.SpanKind.PRODUCER
    assert single.attributes is not None
    assert single.attributes[tracing.EVENT_ID] == "e-1"
    assert single.attributes["messaging.destination.name"] == "dispatcher.interactive"
    assert batch.attributes is not None
    assert list(batch.attributes[tracing.EVENT_IDS]) == ["e-2", "e-3"]
    assert single.context is not None
    carried = trace.get_current_span(propagate.extract(sent[0])).get_span_context()
    assert carried.trace_id == single.context.trace_id
    assert carried.span_id == single.context.span_id


@pytest.mark.usefixtures("endpoint")
def test_work_taken_outside_a_task_run_continues_or_links_the_messages_traces(
    memory: InMemorySpanExporter,
) -> None:
    tracer = trace.get_tracer("test")
    carriers = []
    for _ in range(2):
        with tracer.start_as_current_span("publish"):
            headers: dict[str, str] = {}
            propagate.inject(headers)
            carriers.append(headers)
    tracing.start("test")
    tracing._state.celery_instrumented = True  # as in a worker process
    tracing._steps_as_span_events()
    step_log = logging.getLogger("dispatcher.delivery.test")
    step_log.setLevel(logging.INFO)
    try:
        with tracing.consumer_span("run one", carriers[:1], [{"event_id": "a"}]):
            logs.step(step_log, logging.INFO, "delivery sent", event_id="a", smtp_code=250)
        with tracing.consumer_span("run two", carriers, [{"event_id": "a"}, {"event_id": "b"}]):
            pass
    finally:
        step_log.setLevel(logging.NOTSET)
    spans = {s.name: s for s in memory.get_finished_spans()}
    one, two = spans["run one"], spans["run two"]
    first = trace.get_current_span(propagate.extract(carriers[0])).get_span_context()
    assert one.parent is not None
    assert one.parent.span_id == first.span_id
    assert one.attributes is not None
    assert one.attributes[tracing.EVENT_ID] == "a"
    (event,) = one.events
    assert event.name == "delivery sent"
    assert event.attributes is not None
    assert event.attributes["dispatcher.smtp_code"] == 250
    assert two.parent is None
    assert len(two.links) == 2


def test_api_logs_are_json_lines_like_the_workers(monkeypatch: pytest.MonkeyPatch) -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    access = logging.getLogger("uvicorn.access")
    monkeypatch.setattr(access, "handlers", [handler])
    monkeypatch.setattr(access, "propagate", False)
    monkeypatch.setattr(access, "level", access.level)
    access.setLevel(logging.INFO)
    root = logging.getLogger()
    monkeypatch.setattr(root, "handlers", list(root.handlers))
    logs.use_json_for_api("json")
    access.info('%s - "%s %s HTTP/%s" %d', "127.0.0.1:5000", "GET", "/healthz", "1.1", 200)
    line = json.loads(stream.getvalue())
    assert line["logger"] == "uvicorn.access"
    assert line["level"] == "info"
    assert line["message"] == '127.0.0.1:5000 - "GET /healthz HTTP/1.1" 200'
    assert (line["method"], line["path"], line["status"]) == ("GET", "/healthz", 200)
    assert set(line) >= {"time", "process"}
