"""``dispatcher deliveries`` and ``dispatcher dead-letters ...``."""

from __future__ import annotations

import json

import click

from dispatcher.cli.base import EXIT_USAGE, admin, cli, default_actor, fail
from dispatcher.delivery.replay import ReplaySummary
from dispatcher.delivery.views import DeliveryFilter, DeliveryView, delivery_document
from dispatcher.domain.kinds import lookup_kind
from dispatcher.domain.statuses import STATUSES, DeliveryStatus

# Statuses whose last reply says what went wrong; shown under the delivery's line.
_EXPLAINED = {DeliveryStatus.DEAD, DeliveryStatus.RETRYING, DeliveryStatus.UNKNOWN}


def _print_deliveries(rows: list[DeliveryView]) -> None:
    if not rows:
        click.echo("no deliveries match")
        return
    for d in rows:
        code = d.last_code if d.last_code is not None else "-"
        flag = " (uncertain)" if d.uncertain else ""
        click.echo(
            f"{d.id:>7}  {d.updated_at:%Y-%m-%d %H:%M:%S}  {d.status:<9} {code!s:>4}  "
            f"{d.group:<10} {d.kind:<24} {d.recipient}  [{d.event_id}]{flag}"
        )
        if d.status in _EXPLAINED and d.last_text:
            click.echo(f"{'':>9}{d.last_text}")


@cli.group("deliveries", invoke_without_command=True)
@click.option("--event", "event_id", default=None, help="Only this event_id.")
@click.option("--group", default=None, help="Only this customer group.")
@click.option("--status", type=click.Choice(list(STATUSES)), default=None, help="Only this status.")
@click.option("--kind", default=None, help="Only this e-mail kind.")
@click.option("--recipient", default=None, help="Only this recipient address.")
@click.option("--limit", type=click.IntRange(1, 10_000), default=50, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
def deliveries_command(
    context: click.Context,
    event_id: str | None,
    group: str | None,
    status: str | None,
    kind: str | None,
    recipient: str | None,
    limit: int,
    as_json: bool,
) -> None:
    """List deliveries, newest first (or: dispatcher deliveries resend ID)."""
    if context.invoked_subcommand is not None:
        return
    if kind:
        kind = lookup_kind(kind).name
    rows = admin().records.deliveries(
        DeliveryFilter(event_id, group, status, kind, recipient, limit=limit)
    )
    if as_json:
        click.echo(json.dumps([delivery_document(d) for d in rows], indent=2, ensure_ascii=False))
    else:
        _print_deliveries(rows)


@deliveries_command.command("resend")
@click.argument("delivery_id", type=click.IntRange(1, None))
@click.option("--force", is_flag=True, help="Send even to an address on the suppression list.")
@click.option("--actor", default=None, help="Who resends (recorded in the audit log).")
def deliveries_resend(delivery_id: int, force: bool, actor: str | None) -> None:
    """Send a delivery's e-mail again, as a new delivery linked to it."""
    copy = admin().resend(actor or default_actor(), delivery_id, force=force)
    click.echo(f"delivery {copy.id} sends delivery {delivery_id} again to {copy.recipient}")


@cli.group("dead-letters")
def dead_letters() -> None:
    """Deliveries that failed for good, and events that could not be planned."""


@dead_letters.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def dead_letters_list(as_json: bool) -> None:
    """List dead deliveries and failed events with their reasons."""
    records = admin().records
    dead = records.deliveries(DeliveryFilter(status=DeliveryStatus.DEAD, limit=1000))
    failed = records.failed_events(limit=1000)
    rejected = records.rejected(limit=1000)
    if as_json:
        click.echo(
            json.dumps(
                {
                    "deliveries": [delivery_document(d) for d in dead],
                    "events": [
                        {
                            "event_id": e.event_id,
                            "group": e.customer_group,
                            "type": e.type,
                            "received_at": e.received_at.isoformat(),
                            "reason": e.reason,
                        }
                        for e in failed
                    ],
                    "rejected": [
                        {
                            "id": r.id,
                            "received_at": r.received_at.isoformat(),
                            "event_id": r.event_id,
                            "reason": r.reason,
                        }
                        for r in rejected
                    ],
                },
                indent=2,
                ensure_ascii=False,
            )
        )
        return
    click.echo(f"dead deliveries: {len(dead)} (replay with: dispatcher dead-letters replay ID)")
    if dead:
        _print_deliveries(dead)
    click.echo(
        f"failed events: {len(failed)} (replay with: dispatcher dead-letters replay event:ID)"
    )
    for e in failed:
        click.echo(f"  {e.event_id}  {e.type}  {e.customer_group}  {e.reason}")
    click.echo(f"rejected messages (not valid events; fix the publisher): {len(rejected)}")
    for r in rejected[:20]:
        click.echo(f"  #{r.id}  {r.received_at:%Y-%m-%d %H:%M:%S}  {r.event_id or '-'}  {r.reason}")


@dead_letters.command("replay")
@click.argument("ids", nargs=-1)
@click.option("--all", "replay_all", is_flag=True, help="Replay every dead letter.")
@click.option("--actor", default=None, help="Who replays (recorded in the audit log).")
def dead_letters_replay(ids: tuple[str, ...], replay_all: bool, actor: str | None) -> None:
    """Send dead deliveries again (ID), or re-plan failed events (event:EVENT_ID)."""
    if bool(ids) == replay_all:
        fail("give delivery IDs, event:EVENT_ID, or --all (not both)", EXIT_USAGE)
    delivery_ids: list[int] = []
    event_ids: list[str] = []
    for item in ids:
        if item.startswith("event:"):
            event_ids.append(item.removeprefix("event:"))
        elif item.isdigit():
            delivery_ids.append(int(item))
        else:
            fail(f"{item!r} is neither a delivery ID (a number) nor event:EVENT_ID", EXIT_USAGE)

    def report_skipped(summary: ReplaySummary) -> None:
        for number in summary.skipped_deliveries:
            click.echo(f"delivery {number} is not a dead letter; left as it is", err=True)
        for missing in summary.skipped_events:
            click.echo(f"event {missing} is not a failed event; left as it is", err=True)

    summary = admin().replay(
        actor or default_actor(),
        deliveries=delivery_ids,
        events=event_ids,
        everything=replay_all,
        report=report_skipped,
    )
    click.echo(f"replayed {len(summary.deliveries)} deliveries and {len(summary.events)} events")
