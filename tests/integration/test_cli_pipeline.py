"""The pipeline's commands, run for real against a running worker."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from dispatcher.domain.kinds import EventType
from dispatcher.domain.samples import sample_event
from tests.support.cli import Result, run
from tests.support.documents import full
from tests.support.harness import wait_for
from tests.support.stack import Stack, running_stack

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    with running_stack("sqlite", tmp_path_factory.mktemp("cli-pipeline")) as s:
        s.settings.add_group("RETAIL", "Retail customers")
        s.settings.save_settings("RETAIL", full(), "test")
        yield s


def cli(stack: Stack, *args: str, stdin: str | None = None) -> Result:
    return run(*args, cwd=stack.directory, stdin=stdin, env=stack.env)


def reset(address: str) -> dict[str, Any]:
    event = sample_event(EventType.PASSWORD_RESET)
    event.update(
        event_id=f"cli-{uuid.uuid4().hex[:10]}", customer_group="RETAIL", contact={"email": address}
    )
    return event


def test_publish_a_json_array_and_ndjson(stack: Stack, tmp_path: Path) -> None:
    first, second, third = (reset(f"cli{n}-{uuid.uuid4().hex[:6]}@example.com") for n in range(3))
    (tmp_path / "events.json").write_text(json.dumps([first, second]), "utf-8")
    result = cli(stack, "publish", str(tmp_path / "events.json"))
    assert result.code == 0, result.err
    assert result.out.startswith("published 2 events")
    result = cli(stack, "publish", "-", stdin=json.dumps(third) + "\n")
    assert result.code == 0, result.err
    for event in (first, second, third):
        stack.wait_status(event["event_id"], {"sent"})
    listing = cli(stack, "deliveries", "--event", first["event_id"], "--json")
    [row] = json.loads(listing.out)
    assert (row["status"], row["kind"], row["last_code"]) == ("sent", "password.reset", 250)


def test_publish_refuses_everything_when_one_event_is_bad(stack: Stack, tmp_path: Path) -> None:
    good = reset(f"good-{uuid.uuid4().hex[:6]}@example.com")
    bad = reset("not-an-address")
    lines = "\n".join(json.dumps(e) for e in (good, bad)) + "\n"
    (tmp_path / "events.ndjson").write_text(lines, "utf-8")
    result = cli(stack, "publish", str(tmp_path / "events.ndjson"))
    assert result.code == 1
    assert "Traceback" not in result.err
    assert "line 2.contact.email: is not a valid e-mail address" in result.err
    assert result.err.strip().endswith("nothing was saved or sent")
    marker = reset(f"marker-{uuid.uuid4().hex[:6]}@example.com")
    assert cli(stack, "publish", "-", stdin=json.dumps(marker)).code == 0
    stack.wait_status(marker["event_id"], {"sent"})
    assert stack.records.get_event(good["event_id"]) is None


def test_publish_reports_bad_json_in_one_line(stack: Stack, tmp_path: Path) -> None:
    (tmp_path / "broken.json").write_text('{"event_id": "x",\n', "utf-8")
    result = cli(stack, "publish", str(tmp_path / "broken.json"))
    assert result.code == 1
    assert result.err.strip().splitlines() == [
        f"error: {tmp_path / 'broken.json'}: not valid JSON at line 1, column 18: "
        "Expecting property name enclosed in double quotes"
    ]
    (tmp_path / "lines.ndjson").write_text('{"a": 1}\n{"b": \n', "utf-8")
    result = cli(stack, "publish", str(tmp_path / "lines.ndjson"))
    assert result.err.strip() == (
        f"error: {tmp_path / 'lines.ndjson'}: line 2 is not valid JSON (Expecting value, column 7)"
    )


def test_dead_letters_list_and_replay(stack: Stack) -> None:
    address = f"dead-{uuid.uuid4().hex[:6]}@example.com"
    stack.sink.set_faults([{"match": address, "stage": "rcpt", "code": 550, "text": "5.1.1 gone"}])
    event = reset(address)
    assert cli(stack, "publish", "-", stdin=json.dumps(event)).code == 0
    [row] = stack.wait_status(event["event_id"], {"dead"})
    listing = json.loads(cli(stack, "dead-letters", "list", "--json").out)
    dead = [d for d in listing["deliveries"] if d["id"] == row.id]
    assert dead
    assert (dead[0]["last_code"], dead[0]["last_text"]) == (550, "RCPT TO refused: 5.1.1 gone")
    text = cli(stack, "dead-letters", "list").out
    assert f"{row.id}" in text
    assert "RCPT TO refused: 5.1.1 gone" in text
    stack.sink.set_faults([])
    replay = cli(stack, "dead-letters", "replay", str(row.id))
    assert replay.code == 0, replay.err
    assert replay.out.strip() == "replayed 1 deliveries and 0 events"
    stack.wait_status(event["event_id"], {"sent"})
    again = cli(stack, "dead-letters", "replay", str(row.id))
    assert f"delivery {row.id} is not a dead letter" in again.err
    wait_for(lambda: len(stack.sink.messages(address)) == 1, 10, "one copy")
    assert len(stack.sink.messages(address)) == 1


def test_dead_letters_replay_needs_ids_or_all(stack: Stack) -> None:
    result = cli(stack, "dead-letters", "replay")
    assert result.code == 2
    assert result.err.strip() == "error: give delivery IDs, event:EVENT_ID, or --all (not both)"


def test_status_reports_queues_statuses_and_workers(stack: Stack) -> None:
    result = cli(stack, "status", "--json")
    assert result.code == 0, result.err
    report = json.loads(result.out)
    assert set(report["queues"]) == {
        "dispatcher.interactive",
        "dispatcher.bulk",
        "dispatcher.maintenance",
        "dispatcher.webhooks",
    }
    assert report["deliveries"]["sent"] >= 1
    # The workers sweep on their own (no beat needed): the last sweep is recent.
    assert report["last_sweep_seconds"] is not None
    assert any(name.startswith(stack.worker.name) for name in report["workers"])
    human = cli(stack, "status").out
    assert "dispatcher.interactive" in human
    assert "sent" in human


def test_status_without_redis_says_so(stack: Stack) -> None:
    env = {**stack.env, "DISPATCHER_BROKER_URL": "redis://127.0.0.1:1/0"}
    result = run("status", "--json", cwd=stack.directory, env=env)
    assert result.code == 0
    report = json.loads(result.out)
    assert report["queues"] is None
    assert report["broker"].startswith("cannot reach Redis at redis://127.0.0.1:1/0")


def test_publish_without_redis_fails_fast_with_one_line(stack: Stack) -> None:
    env = {**stack.env, "DISPATCHER_BROKER_URL": "redis://127.0.0.1:1/0"}
    result = run(
        "publish",
        "-",
        cwd=stack.directory,
        env=env,
        stdin=json.dumps(reset("nobroker@example.com")),
    )
    assert result.code == 1
    [line] = result.err.strip().splitlines()
    assert line.startswith("error: cannot reach the broker at redis://127.0.0.1:1/0")
    assert "nothing was enqueued" in line
