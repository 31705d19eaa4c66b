"""``dispatcher settings ...`` and ``dispatcher preview``."""

from __future__ import annotations

import json
from typing import Any

import click

from config_store.document import dump, load, nesting_message, structure_problem
from config_store.repository import VersionInfo
from dispatcher.cli.base import EXIT_USAGE, admin, cli, default_actor, fail, read_input
from dispatcher.domain.group_settings import effective_view
from dispatcher.domain.locales import locale_problem


@cli.group()
def settings() -> None:
    """A group's "Portal e-mails" settings, versioned."""


@settings.command("import")
@click.argument("code")
@click.argument("file")
@click.option("--actor", default=None, help="Who saves (recorded in the history).")
def settings_import(code: str, file: str, actor: str | None) -> None:
    """Validate FILE (YAML or JSON, - for stdin) and save it as a new version."""
    text, name = read_input(file)
    use_cases = admin()
    use_cases.settings.get_group(code)
    raw = load(text, name)
    result = use_cases.save_settings(actor or default_actor(), code, raw).result
    version = result.version
    code = version.group_code  # As stored, whatever case was typed.
    if result.created and version.number == 1:
        click.echo(f"saved {code} settings as version 1")
    elif result.created:
        changed = len(version.changed_fields)
        click.echo(f"saved {code} settings as version {version.number} ({changed} fields changed)")
    else:
        click.echo(f"no changes; {code} settings stay at version {version.number}")


@settings.command("export")
@click.argument("code")
@click.option("--version", "number", type=int, default=None, help="Export version N.")
@click.option(
    "--format", "fmt", type=click.Choice(["yaml", "json"]), default="yaml", show_default=True
)
@click.option(
    "--effective", is_flag=True, help="Show every field's effective value and where it comes from."
)
@click.option("--locale", default=None, help="With --effective: the recipient's locale.")
def settings_export(
    code: str, number: int | None, fmt: str, effective: bool, locale: str | None
) -> None:
    """Print the saved settings document."""
    repository = admin().settings
    if effective:
        if locale and locale_problem(locale):
            fail(f"--locale: {locale_problem(locale)}", EXIT_USAGE)
        if number is not None:
            fail("--effective shows the current version; leave out --version", EXIT_USAGE)
        click.echo(dump(effective_view(repository.snapshot(code), locale), fmt), nl=False)
        return
    click.echo(dump(repository.document(code, number), fmt), nl=False)


@settings.command("history")
@click.argument("code")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def settings_history(code: str, as_json: bool) -> None:
    """List the saved versions, newest first, with actor and time."""
    versions = admin().settings.history(code)
    if as_json:
        click.echo(json.dumps([_version_json(v) for v in versions], indent=2, ensure_ascii=False))
        return
    if not versions:
        click.echo(
            f"{code} has no settings yet; save some with: dispatcher settings import {code} FILE"
        )
        return
    for v in versions:
        mark = "*" if v.is_current else " "
        note = f"restores v{v.restored_from}; " if v.restored_from else ""
        fields = ", ".join(v.changed_fields[:4]) + (" ..." if len(v.changed_fields) > 4 else "")
        click.echo(
            f"{mark} v{v.number:<4} {v.created_at:%Y-%m-%d %H:%M:%S}  {v.actor:<20}  "
            f"{note}{len(v.changed_fields)} changed: {fields}"
        )


def _version_json(version: VersionInfo) -> dict[str, Any]:
    return {
        "version": version.number,
        "actor": version.actor,
        "created_at": version.created_at.isoformat(),
        "changed_fields": list(version.changed_fields),
        "restored_from": version.restored_from,
        "current": version.is_current,
    }


@settings.command("rollback")
@click.argument("code")
@click.argument("version", type=int)
@click.option("--actor", default=None, help="Who rolls back (recorded in the history).")
def settings_rollback(code: str, version: int, actor: str | None) -> None:
    """Save a new version equal to VERSION."""
    result = admin().rollback(actor or default_actor(), code, version).result
    if result.created:
        click.echo(f"saved {code} settings as version {result.version.number}, equal to v{version}")
    else:
        click.echo(f"no changes; the current version {result.version.number} equals v{version}")


@cli.command("preview")
@click.argument("code")
@click.argument("kind")
@click.option("--locale", default=None, help="The recipient's locale, e.g. de-DE or en.")
@click.option(
    "--event",
    "event_file",
    default=None,
    help="Render with this event (JSON file) instead of sample data.",
)
@click.option(
    "--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True
)
def preview_command(
    code: str, kind: str, locale: str | None, event_file: str | None, fmt: str
) -> None:
    """Render one e-mail KIND of group CODE: subject, text and HTML."""
    event: object = None
    if event_file:
        text, name = read_input(event_file)
        try:
            event = json.loads(text)
        except RecursionError:
            fail(f"{name}: {nesting_message()}")
        except json.JSONDecodeError as exc:
            fail(f"{name}: not valid JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}")
        problem = structure_problem(event)
        if problem is not None:
            fail(f"{name}: {problem}")
    result = admin().preview(code, kind, locale, event=event).preview
    if fmt == "json":
        click.echo(json.dumps(result.as_dict(), indent=2, ensure_ascii=False))
        return
    click.echo(f"Kind:     {result.kind}")
    click.echo(f"To:       {result.to}")
    click.echo(f"From:     {result.sender}")
    click.echo(f"Subject:  {result.email.subject}")
    click.echo(
        f"Language: {result.text.locale} (subject from {result.text.subject_source}, "
        f"body from {result.text.body_source})"
    )
    click.echo("\n--- text/plain ---")
    click.echo(result.email.text, nl=False)
    click.echo("--- text/html ---")
    click.echo(result.email.html)
