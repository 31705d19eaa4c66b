"""``dispatcher bounces serve``: the bounce server for the bounce domain's MX."""

from __future__ import annotations

import signal
import threading
from collections.abc import Sequence

import click

from config_store.database import get_engine, require_schema
from dispatcher.broker import publisher
from dispatcher.cli.base import cli, fail
from dispatcher.delivery.feedback import FeedbackRecorder
from dispatcher.delivery.webhooks import endpoints
from dispatcher.domain.return_path import read_return_path
from dispatcher.mail.bounces import parse_bounce
from dispatcher.ops import metrics
from dispatcher.settings import get_settings
from dispatcher.smtp.bounce_server import BounceHandler, start_bounce_server


@cli.group()
def bounces() -> None:
    """Bounces: the server that reads them (CONTRACT §8)."""


@bounces.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=2526, show_default=True, type=click.IntRange(1, 65535))
def bounces_serve(host: str, port: int) -> None:
    """Receive bounces for DISPATCHER_BOUNCE_DOMAIN and record them on their deliveries."""
    config = get_settings()
    if not config.bounce_domain or config.secret_key is None:
        fail(
            "set DISPATCHER_BOUNCE_DOMAIN and DISPATCHER_SECRET_KEY (the workers' too) "
            "before serving bounces"
        )
    domain = config.bounce_domain
    key = config.secret_key.get_secret_value()
    engine = get_engine()
    require_schema(engine)
    recorder = FeedbackRecorder(engine, endpoints(config))

    def record(delivery_ids: Sequence[int], raw: bytes) -> None:
        bounce = parse_bounce(raw)
        outcomes = recorder.record(delivery_ids, bounce)
        for outcome in outcomes:
            metrics.BOUNCES.labels(kind=outcome.kind.value).inc()
        if any(outcome.webhooks for outcome in outcomes):
            publisher.send_webhooks_soon()

    handler = BounceHandler(domain, lambda address: read_return_path(address, key, domain), record)
    controller = start_bounce_server(handler, host, port)
    shown = f"[{host}]" if ":" in host else host
    click.echo(f"bounce server for {domain} on {shown}:{port}; Ctrl-C stops", err=True)
    stop = threading.Event()
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    stop.wait()
    controller.stop()
