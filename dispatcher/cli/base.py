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
        from dispatcher.domain.group_settings import effective_view
        from dispatcher.domain.locales import locale_problem

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
    from dispatcher.domain.kinds import lookup_kind
    from dispatcher.mail.preview import preview

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


# pipeline ----------------------------------------------------------------------


def _parse_events_text(text: str, name: str) -> tuple[list[object], list[str]]:
    """One JSON object, a JSON array, or NDJSON; return events and their labels."""
    stripped = text.strip()
    if not stripped:
        _fail(f"{name}: is empty; give one JSON object, a JSON array or NDJSON")
    try:
        data = json.loads(stripped)
    except json.JSONDecodeError as first_error:
        events: list[object] = []
        labels: list[str] = []
        for number, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                events.append(json.loads(line))
            except json.JSONDecodeError as exc:
                if not events:  # Not NDJSON either: report the document's own error.
                    _fail(
                        f"{name}: not valid JSON at line {first_error.lineno}, column "
                        f"{first_error.colno}: {first_error.msg}"
                    )
                _fail(f"{name}: line {number} is not valid JSON ({exc.msg}, column {exc.colno})")
            labels.append(f"line {number}")
        return events, labels
    if isinstance(data, list):
        return data, [f"[{index}]" for index in range(len(data))]
    return [data], ["event"]


@cli.command("publish")
@click.argument("file")
def publish_command(file: str) -> None:
    """Validate events from FILE (- for stdin) and enqueue them.

    FILE holds one JSON object, a JSON array or NDJSON. Nothing is enqueued
    unless every event is valid.
    """
    from dispatcher.broker.publisher import enqueue_many, validate_all

    text, name = _read_input(file)
    events, labels = _parse_events_text(text, name)
    parsed = validate_all(events, labels)
    enqueue_many(parsed)
    click.echo(f"published {len(parsed)} event{'s' if len(parsed) != 1 else ''}")
    for event in parsed:
        click.echo(f"  {event.event_id}  {event.type}  {event.customer_group}")


def _records() -> Any:
    from config_store.database import get_engine, require_schema
    from dispatcher.delivery.record import DeliveryRecords

    engine = get_engine()
    require_schema(engine)
    return DeliveryRecords(engine)


def _delivery_json(d: Any) -> dict[str, Any]:
    return {
        "id": d.id,
        "event_id": d.event_id,
        "group": d.group_code,
        "kind": d.kind,
        "recipient": d.recipient,
        "status": d.status,
        "attempts": d.attempts,
        "last_code": d.last_code,
        "last_text": d.last_text,
        "message_id": d.message_id,
        "settings_version": d.settings_version,
        "created_at": d.created_at.isoformat(),
        "updated_at": d.updated_at.isoformat(),
        "next_attempt_at": d.next_attempt_at.isoformat() if d.next_attempt_at else None,
        "sent_at": d.sent_at.isoformat() if d.sent_at else None,
        "uncertain": d.uncertain,
        "test": d.test,
    }


def _print_deliveries(rows: list[Any]) -> None:
    if not rows:
        click.echo("no deliveries match")
        return
    for d in rows:
        code = d.last_code if d.last_code is not None else "-"
        flag = " (uncertain)" if d.uncertain else ""
        click.echo(
            f"{d.id:>7}  {d.updated_at:%Y-%m-%d %H:%M:%S}  {d.status:<9} {code!s:>4}  "
            f"{d.group_code:<10} {d.kind:<24} {d.recipient}  [{d.event_id}]{flag}"
        )
        if d.status in {"dead", "retrying", "unknown"} and d.last_text:
            click.echo(f"{'':>9}{d.last_text}")


STATUS_CHOICE = click.Choice(
    ["queued", "sending", "sent", "retrying", "unknown", "dead", "suppressed"]
)


@cli.command("deliveries")
@click.option("--event", "event_id", default=None, help="Only this event_id.")
@click.option("--group", default=None, help="Only this customer group.")
@click.option("--status", type=STATUS_CHOICE, default=None, help="Only this status.")
@click.option("--kind", default=None, help="Only this e-mail kind.")
@click.option("--recipient", default=None, help="Only this recipient address.")
@click.option("--limit", type=click.IntRange(1, 10_000), default=50, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def deliveries_command(
    event_id: str | None,
    group: str | None,
    status: str | None,
    kind: str | None,
    recipient: str | None,
    limit: int,
    as_json: bool,
) -> None:
    """List deliveries, newest first."""
    from dispatcher.delivery.record import DeliveryFilter
    from dispatcher.domain.kinds import lookup_kind

    if kind:
        kind = lookup_kind(kind).name
    rows = _records().deliveries(
        DeliveryFilter(event_id, group, status, kind, recipient, limit=limit)
    )
    if as_json:
        click.echo(json.dumps([_delivery_json(d) for d in rows], indent=2, ensure_ascii=False))
    else:
        _print_deliveries(rows)


@cli.group("dead-letters")
def dead_letters() -> None:
    """Deliveries that failed for good, and events that could not be planned."""


@dead_letters.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def dead_letters_list(as_json: bool) -> None:
    """List dead deliveries and failed events with their reasons."""
    from dispatcher.delivery.record import DeliveryFilter

    records = _records()
    dead = records.deliveries(DeliveryFilter(status="dead", limit=1000))
    failed = records.failed_events(limit=1000)
    rejected = records.rejected(limit=1000)
    if as_json:
        click.echo(
            json.dumps(
                {
                    "deliveries": [_delivery_json(d) for d in dead],
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
def dead_letters_replay(ids: tuple[str, ...], replay_all: bool) -> None:
    """Send dead deliveries again (ID), or re-plan failed events (event:EVENT_ID)."""
    from dispatcher.broker.publisher import enqueue
    from dispatcher.delivery.replay import ReplaySummary, replay_dead_letters
    from dispatcher.worker.tasks import schedule, service

    if bool(ids) == replay_all:
        _fail("give delivery IDs, event:EVENT_ID, or --all (not both)", EXIT_USAGE)
    delivery_ids: list[int] = []
    event_ids: list[str] = []
    for item in ids:
        if item.startswith("event:"):
            event_ids.append(item.removeprefix("event:"))
        elif item.isdigit():
            delivery_ids.append(int(item))
        else:
            _fail(f"{item!r} is neither a delivery ID (a number) nor event:EVENT_ID", EXIT_USAGE)

    def report_skipped(summary: ReplaySummary) -> None:
        for number in summary.skipped_deliveries:
            click.echo(f"delivery {number} is not a dead letter; left as it is", err=True)
        for missing in summary.skipped_events:
            click.echo(f"event {missing} is not a failed event; left as it is", err=True)

    summary = replay_dead_letters(
        service(),
        schedule,
        enqueue,
        deliveries=delivery_ids,
        events=event_ids,
        everything=replay_all,
        before_sending=report_skipped,
    )
    click.echo(f"replayed {len(summary.deliveries)} deliveries and {len(summary.events)} events")


@cli.command("status")
@click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")
def status_command(as_json: bool) -> None:
    """Queue depth per lane, deliveries per status, workers seen."""
    from dispatcher.admin.status import collect_status, format_status

    report = collect_status()
    if as_json:
        click.echo(json.dumps(report, indent=2, ensure_ascii=False))
    else:
        click.echo(format_status(report))


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
