"""A worker process's parts: its dispatcher, its logs and its metrics.

Celery's prefork pool forks after import; each child builds its own
dispatcher (database engine, SMTP connection) on first use, and forgets an
inherited one after a fork.
"""

from __future__ import annotations

import logging
import os
import shutil
from typing import Any

from celery.signals import (
    after_setup_logger,
    after_setup_task_logger,
    worker_init,
    worker_process_shutdown,
    worker_shutdown,
)
from prometheus_client import multiprocess, start_http_server

from config_store.database import get_engine
from config_store.repository import SettingsRepository
from dispatcher.broker.app import app
from dispatcher.broker.queues import redis_for_settings
from dispatcher.delivery.acceptance import AcceptanceMarks
from dispatcher.delivery.limits import limits_from_settings
from dispatcher.delivery.orchestrator import Dispatcher
from dispatcher.delivery.record import DeliveryRecords
from dispatcher.delivery.sending import dkim_keys, mail_sender, relay_source
from dispatcher.delivery.webhooks import WebhookOutbox, WebhookSender
from dispatcher.mail.dkim import DkimKeyError
from dispatcher.ops import tracing
from dispatcher.ops.logs import use_json
from dispatcher.ops.metrics import registry
from dispatcher.settings import Settings, get_settings
from dispatcher.smtp.relays import RelaysFileError
from dispatcher.worker.sweep_clock import SweepClock

__all__ = ["app", "service", "webhook_sender"]

log = logging.getLogger("dispatcher.worker")

# Every worker runs the sweeper's clock; beat is optional (sweep_clock.py).
app.steps["worker"].add(SweepClock)
# Traces of every task when OTEL_EXPORTER_OTLP_ENDPOINT is set (ops/tracing.py).
tracing.instrument_worker()

_service: Dispatcher | None = None
_webhooks: WebhookSender | None = None


def service() -> Dispatcher:
    """This process's dispatcher, with its own engine and SMTP connection."""
    global _service  # noqa: PLW0603 - one instance per worker process by design
    if _service is None:
        config = get_settings()
        engine = get_engine()
        _service = Dispatcher(
            SettingsRepository(engine),
            DeliveryRecords(engine),
            mail_sender(config),
            config,
            limits=limits_from_settings(config),
            marks=_marks(config),
            dkim=dkim_keys(config),
        )
    return _service


def _marks(config: Settings) -> AcceptanceMarks | None:
    client = redis_for_settings(config)
    return AcceptanceMarks(client, config.broker_prefix) if client is not None else None


def webhook_sender() -> WebhookSender:
    """This process's webhook sender, with its own HTTP connection pool."""
    global _webhooks  # noqa: PLW0603 - one instance per worker process by design
    if _webhooks is None:
        _webhooks = WebhookSender(WebhookOutbox(get_engine()), get_settings())
    return _webhooks


def _forget_service() -> None:
    # A forked child must open its own SMTP connection, database pool and
    # HTTP connections.
    global _service, _webhooks  # noqa: PLW0603
    _service = None
    _webhooks = None


os.register_at_fork(after_in_child=_forget_service)


@worker_process_shutdown.connect
def _close_transport(**_: Any) -> None:
    if _service is not None:
        _service.transport.close()
        if _service.marks is not None:
            _service.marks.close()
    if _webhooks is not None:
        _webhooks.close()


@after_setup_logger.connect
@after_setup_task_logger.connect
def _json_logs(logger: logging.Logger, **_: Any) -> None:
    if get_settings().log_format == "json":
        use_json(logger)
    # One "received" and one "succeeded" line per task add nothing to the
    # delivery step lines and cost time on every e-mail; warnings still show.
    for name in ("celery.app.trace", "celery.worker.strategy"):
        logging.getLogger(name).setLevel(logging.WARNING)


@worker_init.connect
def _check_relays_and_keys(**_: Any) -> None:
    """Refuse to start with a broken relays file or DKIM key: one line per problem."""
    config = get_settings()
    try:
        relay_source(config)
        dkim_keys(config)
    except (RelaysFileError, DkimKeyError) as exc:
        for line in exc.problems:
            log.critical("%s", line)
        raise SystemExit(f"error: {exc}") from None


@worker_init.connect
def _serve_metrics(**_: Any) -> None:
    """Serve this worker's /metrics (all its pool processes) on its own port."""
    settings = get_settings()
    port, host = settings.worker_metrics_port, settings.worker_metrics_host
    if port == 0 or not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        return
    try:
        start_http_server(port, addr=host, registry=registry())
    except OSError as exc:
        log.warning(
            "worker metrics not served: port %s is taken (%s); set DISPATCHER_WORKER_METRICS_PORT",
            port,
            exc,
        )
    else:
        log.info("worker metrics on http://%s:%s/metrics", host, port)


@worker_process_shutdown.connect
def _forget_process_metrics(pid: int | None = None, **_: Any) -> None:
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        multiprocess.mark_process_dead(pid or os.getpid())


@worker_shutdown.connect
def _remove_own_metrics_dir(**_: Any) -> None:
    directory = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if directory and os.environ.get("DISPATCHER_OWN_METRICS_DIR"):
        shutil.rmtree(directory, ignore_errors=True)
