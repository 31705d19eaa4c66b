"""``dispatcher publish``: the portal backend's shell door (CONTRACT §4)."""

from __future__ import annotations

import json

import click

from config_store.document import nesting_message, structure_problem
from dispatcher.broker.publisher import enqueue_many
from dispatcher.cli.base import cli, fail, read_input
from dispatcher.domain.events import validate_all


def _parse_events_text(text: str, name: str) -> tuple[list[object], list[str]]:
    """One JSON object, a JSON array, or NDJSON; return events and their labels."""
    stripped = text.strip()
    if not stripped:
        fail(f"{name}: is empty; give one JSON object, a JSON array or NDJSON")
    try:
        data = _bounded(json.loads(stripped), name)
    except RecursionError:
        fail(f"{name}: {nesting_message()}")
    except json.JSONDecodeError as first_error:
        events: list[object] = []
        labels: list[str] = []
        for number, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                events.append(_bounded(json.loads(line), f"{name} line {number}"))
            except RecursionError:
                fail(f"{name} line {number}: {nesting_message()}")
            except json.JSONDecodeError as exc:
                if not events:  # Not NDJSON either: report the document's own error.
                    fail(
                        f"{name}: not valid JSON at line {first_error.lineno}, column "
                        f"{first_error.colno}: {first_error.msg}"
                    )
                fail(f"{name}: line {number} is not valid JSON ({exc.msg}, column {exc.colno})")
            labels.append(f"line {number}")
        return events, labels
    if isinstance(data, list):
        return data, [f"[{index}]" for index in range(len(data))]
    return [data], ["event"]


def _bounded(data: object, name: str) -> object:
    """``data``, unless it nests too deep or holds too many values (one line, then exit)."""
    problem = structure_problem(data)
    if problem is not None:
        fail(f"{name}: {problem}")
    return data


@cli.command("publish")
@click.argument("file")
def publish_command(file: str) -> None:
    """Validate events from FILE (- for stdin) and enqueue them.

    FILE holds one JSON object, a JSON array or NDJSON. Nothing is enqueued
    unless every event is valid.
    """
    text, name = read_input(file)
    events, labels = _parse_events_text(text, name)
    parsed = validate_all(events, labels)
    enqueue_many(parsed)
    click.echo(f"published {len(parsed)} event{'s' if len(parsed) != 1 else ''}")
    for event in parsed:
        click.echo(f"  {event.event_id}  {event.type}  {event.customer_group}")
