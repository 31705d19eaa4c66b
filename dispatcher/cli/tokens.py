"""Commands of the admin API: ``dispatcher tokens ...`` and ``dispatcher api``."""

from __future__ import annotations

import json
from typing import Any

import click

from dispatcher.cli.base import _default_actor, cli


def _access() -> Any:
    from config_store.database import get_engine
    from dispatcher.admin.access import AccessStore

    return AccessStore(get_engine())


@cli.group()
def tokens() -> None:
    """Bearer tokens of the admin API and the web UI."""


@tokens.command("create")
@click.option(
    "--scope",
    type=click.Choice(["publish", "read", "admin"]),
    required=True,
    help="publish: only POST /v1/events; read: read everything; admin: read and change.",
)
@click.option("--name", required=True, help="Who uses it; recorded as the actor of changes.")
def tokens_create(scope: str, name: str) -> None:
    """Make a token and print it once (only its hash is stored)."""
    access = _access()
    issued = access.create_token(name, scope)
    access.record(_default_actor(), "token.create", f"token:{name}", {"scope": scope})
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
    rows = _access().list_tokens()
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
def tokens_revoke(name: str) -> None:
    """Revoke a token at once; its web UI sessions end too."""
    access = _access()
    info = access.revoke(name)
    access.record(_default_actor(), "token.revoke", f"token:{name}", {"scope": info.scope})
    click.echo(f"revoked token {name!r}")


@cli.command("api")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8000, show_default=True, type=click.IntRange(1, 65535))
def api_command(host: str, port: int) -> None:
    """Serve the admin HTTP API and the web UI."""
    import uvicorn

    from config_store.database import get_engine, require_schema
    from dispatcher.api import create_app

    # Refuse to start on a database without this version's schema: every
    # request would fail, and the fix is one command away.
    require_schema(get_engine())
    app = create_app()
    shown = f"[{host}]" if ":" in host else host
    click.echo(
        f"serving the admin API and web UI on http://{shown}:{port}/ (sign in with a token "
        "from: dispatcher tokens create --scope admin --name NAME)",
        err=True,
    )
    uvicorn.run(app, host=host, port=port, log_level="info", proxy_headers=True)
