"""``dispatcher db ...`` and ``dispatcher groups ...``."""

from __future__ import annotations

import json
from typing import Any

import click

from config_store.database import current_revision, get_engine, redact, upgrade
from config_store.repository import GroupInfo
from dispatcher.cli.base import admin, cli, default_actor


@cli.group()
def db() -> None:
    """The database schema."""


@db.command("upgrade")
@click.option("--revision", default="head", show_default=True, help="Target revision.")
def db_upgrade(revision: str) -> None:
    """Create or migrate the schema."""
    engine = get_engine()
    upgrade(engine, revision)
    click.echo(f"database {redact(str(engine.url))} is at schema {current_revision(engine)}")


@cli.group()
def groups() -> None:
    """Customer groups set up for the portal."""


@groups.command("add")
@click.argument("code")
@click.option("--name", required=True, help="The group's name as administrators know it.")
@click.option("--actor", default=None, help="Who adds it (recorded in the audit log).")
def groups_add(code: str, name: str, actor: str | None) -> None:
    """Set a customer group up for the portal."""
    group = admin().add_group(actor or default_actor(), code, name)
    click.echo(
        f"added customer group {group.code} ({group.name}); next: "
        f"dispatcher settings import {group.code} FILE"
    )


@groups.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def groups_list(as_json: bool) -> None:
    """List the customer groups."""
    rows = admin().settings.list_groups()
    if as_json:
        click.echo(json.dumps([_group_json(g) for g in rows], indent=2, ensure_ascii=False))
        return
    if not rows:
        click.echo('no customer groups yet; add one with: dispatcher groups add CODE --name "..."')
        return
    width = max(len(g.code) for g in rows)
    for group in rows:
        version = f"v{group.current_version}" if group.current_version else "no settings"
        click.echo(f"{group.code:<{width}}  {version:<11}  {group.name}")


@groups.command("show")
@click.argument("code")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def groups_show(code: str, as_json: bool) -> None:
    """Show one customer group."""
    details = admin().group(code)
    info = _group_json(details.group)
    if details.saved_at is not None:
        info["saved_by"] = details.saved_by
        info["saved_at"] = details.saved_at.isoformat()
    if as_json:
        click.echo(json.dumps(info, indent=2, ensure_ascii=False))
        return
    for key, value in info.items():
        click.echo(f"{key + ':':<17}{'-' if value is None else value}")


def _group_json(group: GroupInfo) -> dict[str, Any]:
    return {
        "code": group.code,
        "name": group.name,
        "created_at": group.created_at.isoformat(),
        "current_version": group.current_version,
    }
