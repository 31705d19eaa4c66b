"""Operations: everything on one machine, status, worker checks, retention, the audit log."""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import click

from dispatcher.admin.status import collect_status, format_status
from dispatcher.cli import up
from dispatcher.cli.base import admin, cli, default_actor
from dispatcher.worker.check import check


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
    sys.exit(up.run(demo=demo, data_dir=Path(data_dir), host=host, port=port, echo=click.echo))


@cli.command("purge")
@click.option(
    "--older-than",
    "days",
    type=click.IntRange(1, None),
    required=True,
    help="Delete finished delivery records older than this many days.",
)
@click.option("--dry-run", is_flag=True, help="Only count what would be deleted.")
@click.option("--actor", default=None, help="Who purges (recorded in the audit log).")
def purge_command(days: int, dry_run: bool, actor: str | None) -> None:
    """Delete delivery records older than N days (waiting deliveries are kept)."""
    cutoff = datetime.now(UTC) - timedelta(days=days)
    counts = admin().purge(actor or default_actor(), cutoff, dry_run=dry_run)
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
    report = check(name, window)
    if as_json:
        click.echo(json.dumps(report, indent=2))
    else:
        click.echo(report["message"])
    sys.exit(int(report["status"]))


@cli.command("status")
@click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")
def status_command(as_json: bool) -> None:
    """Queue depth per lane, deliveries per status, workers seen."""
    report = collect_status()
    if as_json:
        click.echo(json.dumps(report, indent=2, ensure_ascii=False))
    else:
        click.echo(format_status(report))


@cli.command("audit")
@click.option(
    "--target", default=None, help="Only entries about this group code (or e.g. token:NAME)."
)
@click.option("--limit", type=click.IntRange(1, 10_000), default=100, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def audit_command(target: str | None, limit: int, as_json: bool) -> None:
    """The audit log, newest first: who changed what, from the API, the web UI or here."""
    rows = admin().audit(target, limit=limit)
    if as_json:
        click.echo(
            json.dumps(
                [
                    {
                        "id": r.id,
                        "created_at": r.created_at.isoformat(),
                        "actor": r.actor,
                        "action": r.action,
                        "target": r.target,
                        "diff": r.diff,
                    }
                    for r in rows
                ],
                indent=2,
                ensure_ascii=False,
            )
        )
        return
    if not rows:
        click.echo("no changes recorded yet" + (f" for {target}" if target else ""))
        return
    for r in rows:
        click.echo(
            f"{r.created_at:%Y-%m-%d %H:%M:%S}  {r.actor:<24}  {r.action:<20}  {r.target}"
            f"{_summary(r.diff)}"
        )


def _summary(diff: Any) -> str:
    """A few words of what an entry changed: the changed fields, or its other keys."""
    if not isinstance(diff, dict):
        return ""
    changes = diff.get("changes")
    if isinstance(changes, list) and changes:
        paths = [str(c.get("path")) for c in changes if isinstance(c, dict)]
        more = f" (+{len(paths) - 3})" if len(paths) > 3 else ""
        return "  " + ", ".join(paths[:3]) + more
    shown = [f"{k}={v}" for k, v in diff.items() if k != "changes" and not isinstance(v, dict)]
    return "  " + " ".join(shown[:4]) if shown else ""
