"""OpenTelemetry traces: off unless ``OTEL_EXPORTER_OTLP_ENDPOINT`` is set.

With the ``tracing`` extra installed and an OTLP endpoint configured, one trace
follows an event: the API's request span (FastAPI instrumentation), the
``publish`` span of ``publish()`` (with ``dispatcher.event_id``), the worker's
``run/dispatcher.handle_event`` span (Celery instrumentation; the context
travels in the task message's ``traceparent`` header), and on it one span event
per delivery step the worker logs: ``delivery sent`` with the SMTP reply code,
``delivery retrying``, ``delivery dead`` and so on, with the delivery's fields.
Spans go to the endpoint over OTLP/HTTP in batches; the usual ``OTEL_*``
variables (service name, headers, sampler, batch delays) apply.

Three calls wire it in, one per kind of process: ``traced_publish`` around the
publisher's one sending function, ``instrument_worker`` when a worker process
loads its tasks, ``instrument_api`` when the API app is made. Without the
endpoint each is one dictionary lookup; without the extra, tracing asked for
is one warning. A process that has a tracer provider of its own (the portal
backend calling ``publish()``, a test) keeps it.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Concatenate, ParamSpec, TypeVar

from dispatcher.ops.logs import FIELDS_ATTRIBUTE, use_json_for_api

if TYPE_CHECKING:
    from dispatcher.settings import Settings

ENDPOINT_VARIABLES = ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
EVENT_ID = "dispatcher.event_id"
EVENT_IDS = "dispatcher.event_ids"
DELIVERY_ID = "dispatcher.delivery_id"
TRACER = "dispatcher"
MISSING_EXTRA = (
    "%s is set but OpenTelemetry is not installed; no traces are sent: "
    "pip install 'portal-dispatcher[tracing]'"
)

log = logging.getLogger("dispatcher.tracing")
P = ParamSpec("P")
R = TypeVar("R")


class _State:
    """What this process has set up; each step happens once."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.decided = False
        self.on = False
        self.inject_hook = False
        self.worker_hooks = False
        self.celery_instrumented = False
        self.steps_handler = False


_state = _State()


def enabled() -> bool:
    """Whether traces are asked for: an OTLP endpoint is set and the SDK not disabled."""
    if os.environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return False
    return any(os.environ.get(name, "").strip() for name in ENDPOINT_VARIABLES)


def reset() -> None:
    """Forget what this process decided (for tests that change the environment)."""
    global _state  # noqa: PLW0603 - one state per process by design
    _state = _State()
    product = logging.getLogger("dispatcher")
    for handler in [h for h in product.handlers if isinstance(h, StepEvents)]:
        product.removeHandler(handler)


def start(service: str) -> bool:
    """Set up this process's tracer provider once; return whether it traces."""
    if _state.decided:
        return _state.on
    with _state.lock:
        if not _state.decided:
            _state.on = enabled() and _install_provider(service)
            _state.decided = True
    return _state.on


def _install_provider(service: str) -> bool:
    # The imports wait until tracing is asked for: an optional extra, and
    # nothing to load otherwise.
    try:
        from opentelemetry import trace  # noqa: PLC0415
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import (  # noqa: PLC0415
            OTLPSpanExporter,
        )
        from opentelemetry.sdk.resources import SERVICE_NAME, Resource  # noqa: PLC0415
        from opentelemetry.sdk.trace import TracerProvider  # noqa: PLC0415
        from opentelemetry.sdk.trace.export import BatchSpanProcessor  # noqa: PLC0415
    except ImportError:
        name = next(n for n in ENDPOINT_VARIABLES if os.environ.get(n, "").strip())
        log.warning(MISSING_EXTRA, name)
        return False
    if isinstance(trace.get_tracer_provider(), TracerProvider):
        return True  # The process has one of its own: its spans join it.
    attributes = {} if os.environ.get("OTEL_SERVICE_NAME") else {SERVICE_NAME: service}
    provider = TracerProvider(resource=Resource.create(attributes))
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    trace.set_tracer_provider(provider)
    return True


def _identity(argument: Any) -> dict[str, Any]:
    """Span attributes naming what a task message carries: event ids, a delivery id."""
    if isinstance(argument, Mapping):
        found: dict[str, Any] = {}
        if isinstance(argument.get("event_id"), str):
            found[EVENT_ID] = argument["event_id"]
        if isinstance(argument.get("delivery_id"), int):
            found[DELIVERY_ID] = argument["delivery_id"]
        return found
    if isinstance(argument, list | tuple):
        ids = [x["event_id"] for x in argument if isinstance(x, Mapping) and "event_id" in x]
        ids = [x for x in ids if isinstance(x, str)]
        if len(ids) == 1:
            return {EVENT_ID: ids[0], EVENT_IDS: ids}
        if ids:
            return {EVENT_IDS: ids}
    if isinstance(argument, int) and not isinstance(argument, bool):
        return {DELIVERY_ID: argument}
    return {}


def traced_publish(
    send: Callable[Concatenate[str, Any, str, P], R],
) -> Callable[Concatenate[str, Any, str, P], R]:
    """Wrap the publisher's ``send(task, argument, queue, ...)`` in a ``publish`` span.

    The span (a producer span, with the event ids) is current while the
    message is sent, so its context travels in the message's headers.
    """

    @functools.wraps(send)
    def traced(task: str, argument: Any, queue: str, /, *args: P.args, **kwargs: P.kwargs) -> R:
        if not start("dispatcher"):
            return send(task, argument, queue, *args, **kwargs)
        from opentelemetry import trace  # noqa: PLC0415 - optional extra, loaded when on

        _inject_into_task_messages()
        tracer = trace.get_tracer(TRACER)
        attributes = {
            "messaging.system": "redis",
            "messaging.destination.name": queue,
            "celery.task_name": task,
            **_identity(argument),
        }
        with tracer.start_as_current_span(
            f"publish {task}", kind=trace.SpanKind.PRODUCER, attributes=attributes
        ):
            return send(task, argument, queue, *args, **kwargs)

    return traced


def _inject_into_task_messages() -> None:
    """Put the current trace context into every task message this process sends.

    In a worker the Celery instrumentation does this itself (with a span per
    message); elsewhere it does not, since it only traces tasks it knows.
    """
    if _state.inject_hook:
        return
    from celery.signals import before_task_publish  # noqa: PLC0415

    with _state.lock:
        if not _state.inject_hook:
            before_task_publish.connect(_inject, weak=False)
            _state.inject_hook = True


def _inject(headers: dict[str, Any] | None = None, **_: Any) -> None:
    if headers is None or _state.celery_instrumented:
        return
    from opentelemetry import propagate  # noqa: PLC0415

    propagate.inject(headers)


def instrument_worker() -> None:
    """Trace the tasks of every worker process (prefork children, or the worker itself)."""
    if _state.worker_hooks or not enabled():
        return
    from celery.signals import (  # noqa: PLC0415 - only for workers that trace
        worker_init,
        worker_process_init,
        worker_process_shutdown,
        worker_shutdown,
    )

    _state.worker_hooks = True
    worker_process_init.connect(_trace_tasks, weak=False)
    worker_init.connect(_trace_tasks_without_pool, weak=False)
    # Pool processes end with os._exit: what is still batched must go now.
    worker_process_shutdown.connect(_flush, weak=False)
    worker_shutdown.connect(_flush, weak=False)


def _trace_tasks_without_pool(sender: Any = None, **_: Any) -> None:
    pool = getattr(sender, "pool_cls", None)
    name = getattr(pool, "__module__", str(pool))
    if "prefork" not in name:  # solo or threads: tasks run in this process
        _trace_tasks()


def _trace_tasks(**_: Any) -> None:
    if not start("dispatcher-worker") or _state.celery_instrumented:
        return
    from celery.signals import task_prerun  # noqa: PLC0415
    from opentelemetry.instrumentation.celery import CeleryInstrumentor  # noqa: PLC0415

    CeleryInstrumentor().instrument()  # type: ignore[no-untyped-call]
    _state.celery_instrumented = True
    # Connected after the instrumentation's own: its span is current here.
    task_prerun.connect(_name_the_event, weak=False)
    _steps_as_span_events()


def _name_the_event(args: Any = None, **_: Any) -> None:
    from opentelemetry import trace  # noqa: PLC0415

    span = trace.get_current_span()
    if span.is_recording() and args:
        span.set_attributes(_identity(args[0]))


@contextlib.contextmanager
def consumer_span(name: str, headers: Sequence[Mapping[str, Any]], argument: Any) -> Iterator[None]:
    """A span for work a worker takes from task messages outside Celery's task run.

    ``headers`` are the messages' headers (where publish() put its context):
    one message's context becomes the span's parent, several are linked. The
    delivery steps logged inside become its events, as on a task's span.
    """
    if not _state.celery_instrumented:
        yield
        return
    from opentelemetry import trace  # noqa: PLC0415

    found = [(c, trace.get_current_span(c).get_span_context()) for c in map(_extract, headers)]
    valid = [(c, p) for c, p in found if p.is_valid]
    parents = [p for _, p in valid]
    tracer = trace.get_tracer(TRACER)
    with tracer.start_as_current_span(
        name,
        context=valid[0][0] if len(valid) == 1 else None,
        kind=trace.SpanKind.CONSUMER,
        links=[trace.Link(p) for p in parents] if len(parents) > 1 else None,
        attributes={"celery.action": "run", **_identity(argument)},
    ):
        yield


def _extract(headers: Mapping[str, Any]) -> Any:
    from opentelemetry import propagate  # noqa: PLC0415

    return propagate.extract(dict(headers))


def _flush(**_: Any) -> None:
    from opentelemetry import trace  # noqa: PLC0415

    provider = trace.get_tracer_provider()
    flush = getattr(provider, "force_flush", None)
    if flush is not None:
        flush(5_000)


class StepEvents(logging.Handler):
    """Each delivery step logged (``dispatcher.ops.logs.step``) as an event on the current span."""

    def emit(self, record: logging.LogRecord) -> None:
        fields = getattr(record, FIELDS_ATTRIBUTE, None)
        if not isinstance(fields, dict):
            return
        from opentelemetry import trace  # noqa: PLC0415

        span = trace.get_current_span()
        if not span.is_recording():
            return
        attributes = {
            f"dispatcher.{key}": value
            for key, value in fields.items()
            if key != "step" and isinstance(value, str | bool | int | float)
        }
        span.add_event(str(fields.get("step", record.getMessage())), attributes)
        if record.levelno >= logging.ERROR or fields.get("step") == "delivery dead":
            span.set_status(trace.Status(trace.StatusCode.ERROR, record.getMessage()))


def _steps_as_span_events() -> None:
    if _state.steps_handler:
        return
    _state.steps_handler = True
    # The steps are INFO: a worker run with --loglevel=WARNING records only
    # the warnings among them (retries, dead letters) on its spans.
    logging.getLogger("dispatcher").addHandler(StepEvents(logging.INFO))


def instrument_api(app: Any, config: Settings) -> None:
    """The API process: its logs in the configured format, and its requests traced."""
    use_json_for_api(config.log_format)
    if not start("dispatcher-api"):
        return
    from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor  # noqa: PLC0415

    FastAPIInstrumentor.instrument_app(app, excluded_urls="healthz,readyz,metrics")
    _inject_into_task_messages()
