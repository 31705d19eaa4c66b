"""``dispatcher relays check`` and ``dispatcher dkim dns`` (CONTRACT §9)."""

from __future__ import annotations

import sys
import time

import click

from dispatcher.admin.relays import Relays
from dispatcher.cli.base import cli, fail
from dispatcher.settings import get_settings


@cli.group()
def relays() -> None:
    """The relays e-mails go through (DISPATCHER_RELAYS_FILE)."""


@relays.command("check")
@click.argument("name", required=False)
def relays_check(name: str | None) -> None:
    """Connect, EHLO, STARTTLS/TLS and AUTH on each relay (or NAME); nothing is sent.

    One line per relay; exits 1 when one fails.
    """
    results = Relays(get_settings()).check(name)
    for result in results:
        click.echo(result.line())
    if not all(result.ok for result in results):
        sys.exit(1)


@relays.command("list")
def relays_list() -> None:
    """The relays, the routes and each relay's breaker (never a password)."""
    overview = Relays(get_settings()).overview(time.time())
    if not overview.from_file:
        click.echo("no DISPATCHER_RELAYS_FILE: one relay (DISPATCHER_SMTP_*) for every e-mail")
    for relay in overview.relays:
        auth = ", AUTH" if relay.authenticates else ""
        click.echo(
            f"{relay.name:<16} {relay.host}:{relay.port} {relay.security}{auth}  "
            f"breaker {relay.breaker}"
        )
    for route in overview.routes:
        click.echo(f"route: {route.match} -> {', '.join(route.relays)}")
    click.echo(f"default: {', '.join(overview.default)}")


@cli.group()
def dkim() -> None:
    """DKIM keys (DISPATCHER_DKIM_KEYS_DIR/<domain>/<selector>.key)."""


@dkim.command("dns")
@click.argument("domain")
def dkim_dns(domain: str) -> None:
    """Print the TXT record(s) to publish for DOMAIN's DKIM key(s)."""
    config = get_settings()
    keys = Relays(config).keys
    if keys is None:
        fail("DISPATCHER_DKIM_KEYS_DIR is not set; point it at the directory of the keys")
    records = keys.dns_record(domain)
    if not records:
        fail(
            f"no DKIM key for {domain} in {config.dkim_keys_dir}; create "
            f"{config.dkim_keys_dir}/{domain}/SELECTOR.key (RSA 2048+ or Ed25519)"
        )
    for record in records:
        click.echo(record)
