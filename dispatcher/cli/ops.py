"""Operations commands: everything on one machine, worker checks, retention."""

from __future__ import annotations

import json
import sys

import click

from dispatcher.cli.base import cli


@cli.command("up")
@click.option(
    "--demo", is_flag=True, help="Also set up a demo group and publish one event of each type."
)
@click.option(
    "--data-dir",
    default="dispatcher-data",
    show_default=True,
    help="Where the embedded Redis, the mail sink, logs and metrics live.",
)
@click.option("--host", default="127.0.0.1", show_default=True, help="Address of the web UI.")
@click.option("--port", default=8000, show_default=True, type=click.IntRange(1, 65535))
def up_command(demo: bool, data_dir: str, host: str, port: int) -> None:
    """Run everything on this machine: broker, mail sink, workers, sweeper, API and UI."""
    from dispatcher.cli.up import command

    command(demo, data_dir, host, port)


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
    import signal
    import threading
    from pathlib import Path

    from dispatcher.smtp.sink import start_sink

    controller = start_sink(Path(directory), host, port)
    click.echo(
        f"mail sink on {host}:{port}, storing into {Path(directory).resolve()}; Ctrl-C stops"
    )
    stop = threading.Event()
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    stop.wait()
    controller.stop()


@cli.command("purge")
@click.option(
    "--older-than",
    "days",
    type=click.IntRange(1, None),
    required=True,
    help="Delete finished delivery records older than this many days.",
)
@click.option("--dry-run", is_flag=True, help="Only count what would be deleted.")
def purge_command(days: int, dry_run: bool) -> None:
    """Delete delivery records older than N days (waiting deliveries are kept)."""
    from datetime import UTC, datetime, timedelta

    from config_store.database import get_engine, require_schema
    from dispatcher.delivery.record import DeliveryRecords

    engine = get_engine()
    require_schema(engine)
    cutoff = datetime.now(UTC) - timedelta(days=days)
    counts = DeliveryRecords(engine).purge(cutoff, dry_run=dry_run)
    verb = "would delete" if dry_run else "deleted"
    click.echo(
        f"{verb} {counts['deliveries']} deliveries, {counts['events']} events and "
        f"{counts['rejected']} rejected messages older than {cutoff:%Y-%m-%d %H:%M} UTC"
    )


@cli.command("worker-check")
@click.option(
    "--worker",
    "name",
    default=None,
    help="Check this worker (its node name, e.g. bulk@host); default: all.",
)
@click.option(
    "--window",
    default=15.0,
    show_default=True,
    type=click.FloatRange(1, 600),
    help="Seconds to watch for progress.",
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def worker_check_command(name: str | None, window: float, as_json: bool) -> None:
    """Exit non-zero when no worker answers (2) or one is stalled (1).

    Stalled: a queue it serves holds work and does not shrink while the
    worker completes no task during the window.
    """
    from dispatcher.worker.check import check

    report = check(name, window)
    if as_json:
        click.echo(json.dumps(report, indent=2))
    else:
        click.echo(report["message"])
    sys.exit(int(report["status"]))
