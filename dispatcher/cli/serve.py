"""Long-running servers: ``dispatcher api`` and ``dispatcher sink``."""

from __future__ import annotations

import signal
import threading
from pathlib import Path

import click
import uvicorn

from config_store.database import get_engine, require_schema
from dispatcher.cli.base import cli
from dispatcher.smtp.sink import start_sink


@cli.command("api")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8000, show_default=True, type=click.IntRange(1, 65535))
def api_command(host: str, port: int) -> None:
    """Serve the admin HTTP API and the web UI."""
    # Refuse to start on a database without this version's schema: every
    # request would fail, and the fix is one command away.
    require_schema(get_engine())
    shown = f"[{host}]" if ":" in host else host
    click.echo(
        f"serving the admin API and web UI on http://{shown}:{port}/ (sign in with a token "
        "from: dispatcher tokens create --scope admin --name NAME)",
        err=True,
    )
    # The app is named, not imported: the command line and the HTTP API are
    # two front doors that do not know each other.
    uvicorn.run(
        "dispatcher.api:create_app",
        factory=True,
        host=host,
        port=port,
        log_level="info",
        proxy_headers=True,
    )


@cli.command("sink")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=2525, show_default=True, type=click.IntRange(1, 65535))
@click.option(
    "--dir",
    "directory",
    default="mail",
    show_default=True,
    help="Where every received message is kept as an .eml file.",
)
def sink_command(host: str, port: int, directory: str) -> None:
    """A local SMTP server that keeps every message as an .eml file (for development)."""
    controller = start_sink(Path(directory), host, port)
    click.echo(
        f"mail sink on {host}:{port}, storing into {Path(directory).resolve()}; Ctrl-C stops"
    )
    stop = threading.Event()
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    stop.wait()
    controller.stop()
