"""``dispatcher tokens ...``: bearer tokens of the admin API and the web UI."""

from __future__ import annotations

import json

import click

from dispatcher.admin.access import SCOPES
from dispatcher.cli.base import admin, cli, default_actor


@cli.group()
def tokens() -> None:
    """Bearer tokens of the admin API and the web UI."""


@tokens.command("create")
@click.option(
    "--scope",
    type=click.Choice(list(SCOPES)),
    required=True,
    help="publish: only POST /v1/events; read: read everything; admin: read and change.",
)
@click.option("--name", required=True, help="Who uses it; recorded as the actor of changes.")
@click.option("--actor", default=None, help="Who creates it (recorded in the audit log).")
def tokens_create(scope: str, name: str, actor: str | None) -> None:
    """Make a token and print it once (only its hash is stored)."""
    issued = admin().create_token(actor or default_actor(), name, scope)
    # The token alone goes to stdout, so that TOKEN=$(dispatcher tokens create ...) works.
    click.echo(
        f"created {scope} token {name!r}; it is shown only now, so store it safely "
        f"(revoke it with: dispatcher tokens revoke {name})",
        err=True,
    )
    click.echo(issued.secret)


@tokens.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def tokens_list(as_json: bool) -> None:
    """List the tokens (never the tokens themselves)."""
    rows = admin().access.list_tokens()
    if as_json:
        click.echo(
            json.dumps(
                [
                    {
                        "name": t.name,
                        "scope": t.scope,
                        "created_at": t.created_at.isoformat(),
                        "last_used_at": t.last_used_at.isoformat() if t.last_used_at else None,
                        "revoked_at": t.revoked_at.isoformat() if t.revoked_at else None,
                    }
                    for t in rows
                ],
                indent=2,
                ensure_ascii=False,
            )
        )
        return
    if not rows:
        click.echo("no tokens yet; make one with: dispatcher tokens create --scope admin --name N")
        return
    width = max(len(t.name) for t in rows)
    for t in rows:
        used = f"last used {t.last_used_at:%Y-%m-%d %H:%M}" if t.last_used_at else "never used"
        state = f"revoked {t.revoked_at:%Y-%m-%d %H:%M}" if t.revoked_at else "active"
        click.echo(
            f"{t.name:<{width}}  {t.scope:<7}  created {t.created_at:%Y-%m-%d %H:%M}  "
            f"{used:<27}  {state}"
        )


@tokens.command("revoke")
@click.argument("name")
@click.option("--actor", default=None, help="Who revokes it (recorded in the audit log).")
def tokens_revoke(name: str, actor: str | None) -> None:
    """Revoke a token at once; its web UI sessions end too."""
    admin().revoke_token(actor or default_actor(), name)
    click.echo(f"revoked token {name!r}")
