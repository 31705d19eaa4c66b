"""One trace from the API and publish() through a worker to the SMTP reply (ops/tracing.py).

The test process (API app, publish()) keeps its spans in OpenTelemetry's
in-memory exporter; the worker, a real `celery -A worker worker` process, is
configured as in production, by OTEL_EXPORTER_OTLP_ENDPOINT, and exports over
OTLP/HTTP to a small collector this test runs. Both halves must be one trace.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from opentelemetry import trace
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from dispatcher.admin.access import AccessStore
from dispatcher.admin.pipeline import CeleryPipeline
from dispatcher.api import create_app
from dispatcher.api.config import ApiSettings
from dispatcher.domain.kinds import EventType
from dispatcher.domain.samples import sample_event
from dispatcher.ops import tracing
from dispatcher.settings import Settings
from tests.support.api_support import TestClient
from tests.support.documents import full
from tests.support.harness import wait_for
from tests.support.stack import running_stack
from tests.support.tracing import memory_exporter

pytestmark = pytest.mark.integration


def _value(any_value: Any) -> Any:
    kind = any_value.WhichOneof("value")
    return getattr(any_value, kind) if kind else None


@dataclass
class Collected:
    name: str
    trace_id: str
    span_id: str
    parent_id: str
    service: str
    attributes: dict[str, Any]
    events: list[tuple[str, dict[str, Any]]]


@dataclass
class Collector:
    """An OTLP/HTTP trace receiver: what the worker process exports."""

    spans: list[Collected] = field(default_factory=list)
    url: str = ""

    def receive(self, body: bytes) -> None:
        request = ExportTraceServiceRequest()
        request.ParseFromString(body)
        for resource_spans in request.resource_spans:
            resource = {a.key: _value(a.value) for a in resource_spans.resource.attributes}
            for scope in resource_spans.scope_spans:
                for span in scope.spans:
                    self.spans.append(
                        Collected(
                            name=span.name,
                            trace_id=span.trace_id.hex(),
                            span_id=span.span_id.hex(),
                            parent_id=span.parent_span_id.hex(),
                            service=str(resource.get("service.name")),
                            attributes={a.key: _value(a.value) for a in span.attributes},
                            events=[
                                (e.name, {a.key: _value(a.value) for a in e.attributes})
                                for e in span.events
                            ],
                        )
                    )


@pytest.fixture(scope="module")
def collector() -> Iterator[Collector]:
    found = Collector()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            if self.path == "/v1/traces":
                found.receive(body)
            answer = ExportTraceServiceResponse().SerializeToString()
            self.send_response(200)
            self.send_header("Content-Type", "application/x-protobuf")
            self.send_header("Content-Length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    found.url = f"http://127.0.0.1:{server.server_address[1]}"
    yield found
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def memory() -> InMemorySpanExporter:
    return memory_exporter()


@pytest.fixture
def traced(collector: Collector, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", collector.url)
    tracing.reset()
    yield
    monkeypatch.delenv("OTEL_EXPORTER_OTLP_ENDPOINT")
    tracing.reset()


def _hex(number: int, width: int) -> str:
    return format(number, f"0{width}x")


@pytest.mark.usefixtures("traced")
@pytest.mark.parametrize(
    "batch_size",
    [
        # Celery's own task run (the Celery instrumentation's span).
        "1",
        # The worker's batching path (dispatcher/worker/batching.py), outside
        # Celery's task run: tracing.consumer_span.
        "10",
    ],
)
def test_one_trace_from_the_api_through_the_worker_to_the_smtp_reply(
    tmp_path_factory: pytest.TempPathFactory,
    collector: Collector,
    memory: InMemorySpanExporter,
    batch_size: str,
) -> None:
    directory: Path = tmp_path_factory.mktemp("tracing")
    otel = {
        "OTEL_EXPORTER_OTLP_ENDPOINT": collector.url,
        "OTEL_BSP_SCHEDULE_DELAY": "100",
        "DISPATCHER_EVENT_BATCH_SIZE": batch_size,
    }
    memory.clear()
    with running_stack("sqlite", directory, **otel) as stack:
        group = f"T{uuid.uuid4().hex[:8]}".upper()
        stack.settings.add_group(group, "Tracing")
        stack.settings.save_settings(group, full(), "test")
        config = Settings(database_url=stack.database_url)
        app = create_app(
            engine=stack.engine,
            config=config,
            api_settings=ApiSettings(secret="s" * 40),
            pipeline=CeleryPipeline(config),
        )
        token = AccessStore(stack.engine).create_token("tracing", "publish").secret
        event = sample_event(EventType.PASSWORD_RESET)
        event["event_id"] = f"traced-{uuid.uuid4().hex[:10]}"
        event["customer_group"] = group
        address = f"traced-{uuid.uuid4().hex[:8]}@example.com"
        event["contact"] = {"email": address, "name": "Kim Example"}
        with TestClient(app, base_url="http://testserver") as client:
            answer = client.post(
                "/v1/events", json=event, headers={"Authorization": f"Bearer {token}"}
            )
        assert answer.status_code == 202, answer.text
        wait_for(lambda: stack.sink.messages(address), 30, "the e-mail in the sink")

        # This process: the API's request span, and publish() inside it.
        spans: list[ReadableSpan] = list(memory.get_finished_spans())
        publish = next(s for s in spans if s.name == "publish dispatcher.handle_event")
        assert publish.attributes is not None
        assert publish.attributes[tracing.EVENT_ID] == event["event_id"]
        assert publish.parent is not None
        request = next(
            s
            for s in spans
            if s.context is not None and s.context.span_id == publish.parent.span_id
        )
        assert request.kind is trace.SpanKind.SERVER, request
        assert publish.context is not None
        trace_id = _hex(publish.context.trace_id, 32)

        # The worker: its task span continues the same trace under publish(),
        # and carries the SMTP server's reply as the "delivery sent" step.
        def worker_span() -> Collected | None:
            return next(
                (
                    s
                    for s in collector.spans
                    if s.name == "run/dispatcher.handle_event" and s.trace_id == trace_id
                ),
                None,
            )

        try:
            run = wait_for(worker_span, 10, "the worker's span at the collector")
        except AssertionError as exc:
            seen = sorted({(s.name, s.trace_id) for s in collector.spans if "sweep" not in s.name})
            log = stack.worker.log()[-3000:]
            raise AssertionError(f"{exc}; spans other than sweeps: {seen}\n{log}") from None
        assert run.parent_id == _hex(publish.context.span_id, 16)
        assert run.service == "dispatcher-worker"
        assert run.attributes[tracing.EVENT_ID] == event["event_id"]
        sent = [attrs for name, attrs in run.events if name == "delivery sent"]
        assert len(sent) == 1, run.events
        assert sent[0]["dispatcher.smtp_code"] == 250
        assert sent[0]["dispatcher.event_id"] == event["event_id"]
        assert sent[0]["dispatcher.kind"] == "password.reset"
    # Tracing must never cost the worker an error. Only tracebacks that involve
    # it count: the stack has stopped the worker by now, and a SIGTERM to its
    # process group that finds a pool process busy (a sweep, say) logs billiard's
    # "Worker exited prematurely" with a traceback (seen once in CI).
    worker_log = stack.worker.log()
    tracebacks = worker_log.split("Traceback (most recent call last):")[1:]
    assert not [t for t in tracebacks if "opentelemetry" in t or "tracing" in t], worker_log
