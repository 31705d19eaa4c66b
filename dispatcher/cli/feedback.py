"""``dispatcher suppressions ...`` and ``dispatcher webhooks ...`` (CONTRACT §8)."""

from __future__ import annotations

import json

import click

from dispatcher.cli.base import EXIT_USAGE, admin, cli, default_actor, fail
from dispatcher.delivery.suppressions import SuppressionView
from dispatcher.delivery.webhooks import WebhookView
from dispatcher.domain.statuses import WebhookStatus


def _suppression_json(entry: SuppressionView, internal: dict[str, list[str]]) -> dict[str, object]:
    return {
        "address": entry.address,
        "reason": entry.reason,
        "since": entry.since.isoformat(),
        "source_delivery_id": entry.source_delivery_id,
        "created_by": entry.created_by,
        "internal_for_groups": internal.get(entry.address, []),
    }


@cli.group()
def suppressions() -> None:
    """Addresses no e-mail goes to: hard bounces and entries made by hand."""


@suppressions.command("list")
@click.option("--search", default=None, help="Only addresses or reasons containing this.")
@click.option("--limit", type=click.IntRange(1, 10_000), default=100, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def suppressions_list(search: str | None, limit: int, as_json: bool) -> None:
    """List the suppression list, newest first."""
    use_cases = admin()
    entries, total = use_cases.suppressions.entries(search, limit)
    internal = use_cases.internal_addresses()
    if as_json:
        rows = [_suppression_json(e, internal) for e in entries]
        click.echo(json.dumps(rows, indent=2, ensure_ascii=False))
        return
    if not entries:
        click.echo("no suppressed addresses" + (f" matching {search!r}" if search else ""))
        return
    for entry in entries:
        source = f" (delivery {entry.source_delivery_id})" if entry.source_delivery_id else ""
        click.echo(f"{entry.since:%Y-%m-%d %H:%M}  {entry.address}  {entry.reason}{source}")
        groups = internal.get(entry.address)
        if groups:
            click.echo(
                f"{'':>18}WARNING: the access-request inbox of {', '.join(groups)}; "
                "staff will not get access requests"
            )
    if total > len(entries):
        click.echo(f"... {total - len(entries)} more; narrow with --search or raise --limit")


@suppressions.command("add")
@click.argument("address")
@click.option("--reason", required=True, help="Why no e-mail may go to it.")
@click.option("--actor", default=None, help="Who adds it (recorded in the audit log).")
def suppressions_add(address: str, reason: str, actor: str | None) -> None:
    """Put an address on the suppression list."""
    use_cases = admin()
    entry = use_cases.suppress(actor or default_actor(), address, reason)
    click.echo(f"suppressed {entry.address}: {entry.reason}")
    groups = use_cases.internal_addresses().get(entry.address)
    if groups:
        click.echo(
            f"warning: {entry.address} receives the access requests of {', '.join(groups)}; "
            "staff will not get them while it is suppressed",
            err=True,
        )


@suppressions.command("remove")
@click.argument("address")
@click.option("--actor", default=None, help="Who removes it (recorded in the audit log).")
def suppressions_remove(address: str, actor: str | None) -> None:
    """Take an address off the suppression list."""
    entry = admin().unsuppress(actor or default_actor(), address)
    click.echo(f"{entry.address} is no longer suppressed")


def _webhook_json(message: WebhookView) -> dict[str, object]:
    return {
        "id": message.id,
        "webhook_id": message.webhook_id,
        "type": message.event_type,
        "endpoint": message.endpoint,
        "delivery_id": message.delivery_id,
        "status": message.status.value,
        "attempts": message.attempts,
        "created_at": message.created_at.isoformat(),
        "next_attempt_at": message.next_attempt_at.isoformat() if message.next_attempt_at else None,
        "delivered_at": message.delivered_at.isoformat() if message.delivered_at else None,
        "last_error": message.last_error,
    }


@cli.group()
def webhooks() -> None:
    """Webhooks to the portal backend: the outbox, and replaying failed ones."""


@webhooks.command("list")
@click.option("--failed", is_flag=True, help="Only webhooks given up on (replayable).")
@click.option("--limit", type=click.IntRange(1, 10_000), default=100, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def webhooks_list(failed: bool, limit: int, as_json: bool) -> None:
    """List webhooks, newest first."""
    use_cases = admin()
    rows = use_cases.webhooks.messages(WebhookStatus.FAILED if failed else None, limit=limit)
    if as_json:
        click.echo(json.dumps([_webhook_json(m) for m in rows], indent=2, ensure_ascii=False))
        return
    counts = use_cases.webhooks.counts()
    click.echo(
        "webhooks: "
        + ", ".join(f"{counts[s.value]} {s.value}" for s in WebhookStatus)
        + (
            " (replay failed ones with: dispatcher webhooks replay --all)"
            if counts["failed"]
            else ""
        )
    )
    for m in rows:
        error = (
            f"  {m.last_error}" if m.last_error and m.status is not WebhookStatus.DELIVERED else ""
        )
        click.echo(
            f"{m.id:>7}  {m.created_at:%Y-%m-%d %H:%M:%S}  {m.status.value:<9} "
            f"{m.event_type:<19} delivery {m.delivery_id}  attempts {m.attempts}  "
            f"{m.endpoint}{error}"
        )


@webhooks.command("replay")
@click.argument("ids", nargs=-1, type=int)
@click.option("--all", "replay_all", is_flag=True, help="Replay every failed webhook.")
@click.option("--actor", default=None, help="Who replays (recorded in the audit log).")
def webhooks_replay(ids: tuple[int, ...], replay_all: bool, actor: str | None) -> None:
    """Send failed webhooks again (by id, or all of them)."""
    if bool(ids) == replay_all:
        fail("give webhook IDs or --all (not both)", EXIT_USAGE)
    replayed = admin().replay_webhooks(actor or default_actor(), ids, everything=replay_all)
    missing = sorted(set(ids) - set(replayed))
    for number in missing:
        click.echo(f"webhook {number} has not failed; left as it is", err=True)
    click.echo(f"replayed {len(replayed)} webhooks")
