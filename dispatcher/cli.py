"""The ``dispatcher`` command (CONTRACT §5).

Every user error ends in one line on stderr that says how to fix it and a
non-zero exit status; a traceback means a bug in this program.
"""

from __future__ import annotations

import getpass
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, NoReturn, TypeVar

import click

from dispatcher.errors import DispatcherError, InvalidInput

F = TypeVar("F", bound=Callable[..., Any])

# Click 8.2 added a dedicated error for "no arguments: show help".
_NO_ARGS_IS_HELP: tuple[type[click.UsageError], ...] = tuple(
    cls for cls in (getattr(click.exceptions, "NoArgsIsHelpError", None),) if cls is not None
)
EXIT_USER_ERROR = 1
EXIT_USAGE = 2


def _fail(message: str, code: int = EXIT_USER_ERROR) -> NoReturn:
    click.echo(f"error: {message}", err=True)
    sys.exit(code)


def _repository() -> Any:
    from config_store.database import get_engine
    from config_store.repository import SettingsRepository

    return SettingsRepository(get_engine())


def _read_input(path: str) -> tuple[str, str]:
    """Read FILE or '-' (stdin); return (text, name for messages)."""
    if path == "-":
        return sys.stdin.read(), "stdin"
    file = Path(path)
    try:
        return file.read_text("utf-8"), str(file)
    except FileNotFoundError:
        _fail(f"{path}: no such file; give the path of a YAML or JSON file, or - for stdin")
    except IsADirectoryError:
        _fail(f"{path}: is a directory; give the path of a YAML or JSON file")
    except UnicodeDecodeError:
        _fail(f"{path}: is not UTF-8 text; save it as UTF-8")
    except OSError as exc:
        _fail(f"{path}: cannot read it ({exc.strerror})")


def _default_actor() -> str:
    try:
        return f"{getpass.getuser()} (cli)"
    except (KeyError, OSError):
        return "cli"


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(package_name="portal-dispatcher")
def cli() -> None:
    """Notification dispatcher for the customer self-service portal."""


# db --------------------------------------------------------------------------


@cli.group()
def db() -> None:
    """The database schema."""


@db.command("upgrade")
@click.option("--revision", default="head", show_default=True, help="Target revision.")
def db_upgrade(revision: str) -> None:
    """Create or migrate the schema."""
    from config_store.database import current_revision, get_engine, redact, upgrade

    engine = get_engine()
    upgrade(engine, revision)
    click.echo(f"database {redact(str(engine.url))} is at schema {current_revision(engine)}")


# groups ----------------------------------------------------------------------


@cli.group()
def groups() -> None:
    """Customer groups set up for the portal."""


@groups.command("add")
@click.argument("code")
@click.option("--name", required=True, help="The group's name as administrators know it.")
def groups_add(code: str, name: str) -> None:
    """Set a customer group up for the portal."""
    group = _repository().add_group(code, name)
    click.echo(
        f"added customer group {group.code} ({group.name}); next: "
        f"dispatcher settings import {group.code} FILE"
    )


@groups.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def groups_list(as_json: bool) -> None:
    """List the customer groups."""
    rows = _repository().list_groups()
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
    repository = _repository()
    group = repository.get_group(code)
    info = _group_json(group)
    if group.current_version:
        latest = repository.history(code)[0]
        info["saved_by"] = latest.actor
        info["saved_at"] = latest.created_at.isoformat()
    if as_json:
        click.echo(json.dumps(info, indent=2, ensure_ascii=False))
        return
    for key, value in info.items():
        click.echo(f"{key + ':':<17}{'-' if value is None else value}")


def _group_json(group: Any) -> dict[str, Any]:
    return {
        "code": group.code,
        "name": group.name,
        "created_at": group.created_at.isoformat(),
        "current_version": group.current_version,
    }


# settings --------------------------------------------------------------------


@cli.group()
def settings() -> None:
    """A group's "Portal e-mails" settings, versioned."""


@settings.command("import")
@click.argument("code")
@click.argument("file")
@click.option("--actor", default=None, help="Who saves (recorded in the history).")
def settings_import(code: str, file: str, actor: str | None) -> None:
    """Validate FILE (YAML or JSON, - for stdin) and save it as a new version."""
    from config_store.document import load

    text, name = _read_input(file)
    repository = _repository()
    repository.get_group(code)
    raw = load(text, name)
    result = repository.save_settings(code, raw, actor or _default_actor())
    version = result.version
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
    from config_store.document import dump

    repository = _repository()
    if effective:
        from config_store.effective import effective_view
        from dispatcher.locales import locale_problem

        if locale and locale_problem(locale):
            _fail(f"--locale: {locale_problem(locale)}", EXIT_USAGE)
        if number is not None:
            _fail("--effective shows the current version; leave out --version", EXIT_USAGE)
        click.echo(dump(effective_view(repository.snapshot(code), locale), fmt), nl=False)
        return
    click.echo(dump(repository.document(code, number), fmt), nl=False)


@settings.command("history")
@click.argument("code")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def settings_history(code: str, as_json: bool) -> None:
    """List the saved versions, newest first, with actor and time."""
    versions = _repository().history(code)
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


def _version_json(version: Any) -> dict[str, Any]:
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
    result = _repository().rollback(code, version, actor or _default_actor())
    if result.created:
        click.echo(f"saved {code} settings as version {result.version.number}, equal to v{version}")
    else:
        click.echo(f"no changes; the current version {result.version.number} equals v{version}")


# preview ---------------------------------------------------------------------


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
    from dispatcher.kinds import lookup_kind
    from dispatcher.preview import preview

    found = lookup_kind(kind)
    event: object = None
    if event_file:
        text, name = _read_input(event_file)
        try:
            event = json.loads(text)
        except json.JSONDecodeError as exc:
            _fail(f"{name}: not valid JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}")
    result = preview(_repository().snapshot(code), found, locale, event)
    if fmt == "json":
        click.echo(json.dumps(result.as_dict(), indent=2, ensure_ascii=False))
        return
    click.echo(f"Kind:     {found.name}")
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


# entry point -----------------------------------------------------------------


def main(argv: list[str] | None = None) -> None:
    """Run the CLI; map every user error to one line and an exit status."""
    from pydantic import ValidationError
    from sqlalchemy.exc import SQLAlchemyError

    try:
        cli.main(args=argv, prog_name="dispatcher", standalone_mode=False)
    except _NO_ARGS_IS_HELP as exc:
        # A bare group name ("dispatcher settings") shows that group's help.
        click.echo(exc.format_message())
        sys.exit(EXIT_USAGE)
    except click.UsageError as exc:
        command = exc.ctx.command_path if exc.ctx else "dispatcher"
        _fail(f"{exc.format_message()} (see: {command} --help)", EXIT_USAGE)
    except click.ClickException as exc:
        _fail(exc.format_message())
    except click.Abort:
        click.echo("aborted", err=True)
        sys.exit(130)
    except InvalidInput as exc:
        click.echo(f"error: {exc.summary()}", err=True)
        if len(exc.errors) > 1:
            for error in exc.errors:
                click.echo(f"  {error}", err=True)
        click.echo("nothing was saved or sent", err=True)
        sys.exit(EXIT_USER_ERROR)
    except DispatcherError as exc:
        _fail(str(exc))
    except ValidationError as exc:
        # Only the environment settings reach here unconverted.
        first = exc.errors()[0]
        field = "DISPATCHER_" + str(first["loc"][0]).upper() if first["loc"] else "DISPATCHER_*"
        _fail(f"{field}: {first['msg']}; fix the environment variable")
    except SQLAlchemyError as exc:
        from config_store.database import first_line

        _fail(f"database error: {first_line(exc)}; check DISPATCHER_DATABASE_URL")
    except BrokenPipeError:  # pragma: no cover - e.g. `dispatcher ... | head`
        sys.exit(0)
