"""Both front doors audit the same way: the command line writes what the API writes."""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from config_store.database import make_engine
from dispatcher.admin.access import AccessStore
from dispatcher.delivery.record import DeliveryRecords
from dispatcher.delivery.views import AttemptResult, NewDelivery
from dispatcher.domain.kinds import EventType
from dispatcher.domain.samples import sample_event
from dispatcher.domain.statuses import DeliveryStatus
from tests.conftest import require_redis
from tests.support.api_support import make_client
from tests.support.cli import Result, run
from tests.support.documents import full
from tests.support.stack import purge_broker

NOW = datetime(2026, 12, 4, 9, 0, tzinfo=UTC)


def ok(result: Result) -> str:
    assert result.code == 0, result.err
    return result.out


def dead_delivery(url: str, group: str) -> int:
    """A dead letter of ``group`` in the record, as a permanent SMTP failure leaves it."""
    engine = make_engine(url)
    try:
        records = DeliveryRecords(engine)
        raw = sample_event(EventType.PASSWORD_RESET)
        raw.update(event_id=f"dead-{uuid.uuid4().hex[:8]}", customer_group=group)
        accepted = records.record_accepted(
            raw,
            "interactive",
            [
                NewDelivery(
                    kind="password.reset",
                    recipient="gone@example.com",
                    recipient_name=None,
                    recipient_locale="de",
                    message_id=f"<{uuid.uuid4().hex}@example.com>",
                    lane="interactive",
                )
            ],
            1,
            NOW,
        )
        [claimed] = accepted.claimed
        records.finish(
            [AttemptResult(claimed.delivery.id, DeliveryStatus.DEAD, 550, "5.1.1 gone")], NOW
        )
        return claimed.delivery.id
    finally:
        engine.dispose()


@pytest.fixture
def cli_changes(workdir: Path) -> Iterator[Path]:
    """A database in which the command line made one change of each kind."""
    require_redis()
    ok(run("db", "upgrade", cwd=workdir))
    document = full()
    (workdir / "v1.yaml").write_text(yaml.safe_dump(document), "utf-8")
    changed = json.loads(json.dumps(document))
    changed["password_reset"]["subject"] = "Neues Passwort für {{ contact.name }}"
    (workdir / "v2.yaml").write_text(yaml.safe_dump(changed), "utf-8")
    ok(run("groups", "add", "RETAIL", "--name", "Retail customers", cwd=workdir))
    ok(run("settings", "import", "RETAIL", "v1.yaml", "--actor", "alice", cwd=workdir))
    ok(run("settings", "import", "RETAIL", "v2.yaml", "--actor", "alice", cwd=workdir))
    ok(run("settings", "rollback", "RETAIL", "1", "--actor", "bob", cwd=workdir))
    ok(run("tokens", "create", "--scope", "publish", "--name", "portal", cwd=workdir))
    dead = dead_delivery(os.environ["DISPATCHER_DATABASE_URL"], "RETAIL")
    ok(run("dead-letters", "replay", str(dead), "--actor", "carol", cwd=workdir))
    yield workdir
    # The replay enqueued a task for a delivery of this database only.
    purge_broker(os.environ["DISPATCHER_BROKER_PREFIX"])


def audit(workdir: Path, *args: str) -> list[dict[str, Any]]:
    entries: list[dict[str, Any]] = json.loads(ok(run("audit", "--json", *args, cwd=workdir)))
    return entries


def test_every_change_from_the_command_line_is_in_the_audit_log(cli_changes: Path) -> None:
    entries = list(reversed(audit(cli_changes)))
    assert [(e["action"], e["target"]) for e in entries] == [
        ("group.add", "RETAIL"),
        ("settings.save", "RETAIL"),
        ("settings.save", "RETAIL"),
        ("settings.rollback", "RETAIL"),
        ("token.create", "token:portal"),
        ("dead_letters.replay", "dead-letters"),
    ]
    user = entries[0]["actor"]
    assert user.endswith("(cli)")
    assert [e["actor"] for e in entries] == [user, "alice", "alice", "bob", user, "carol"]
    assert entries[0]["diff"] == {
        "changes": [{"path": "name", "old": None, "new": "Retail customers"}]
    }
    assert entries[2]["diff"]["version"] == 2
    assert entries[2]["diff"]["changes"] == [
        {
            "path": "password_reset.subject",
            "old": full()["password_reset"]["subject"],
            "new": "Neues Passwort für {{ contact.name }}",
        }
    ]
    assert entries[3]["diff"]["restored_from"] == 1
    assert entries[4]["diff"] == {"scope": "publish"}
    assert entries[5]["diff"]["all"] is False
    assert len(entries[5]["diff"]["deliveries"]) == 1
    # The target filter finds a group's entries whatever case it is typed in.
    assert len(audit(cli_changes, "--target", "RETAIL")) == 4
    text = ok(run("audit", "--target", "RETAIL", cwd=cli_changes))
    assert "settings.rollback" in text
    assert "password_reset.subject" in text


def test_the_api_writes_the_very_same_entries_as_the_command_line(cli_changes: Path) -> None:
    """The same changes to a second group over HTTP: equal entries but for actor and target."""
    engine = make_engine(os.environ["DISPATCHER_DATABASE_URL"])
    try:
        token = AccessStore(engine).create_token("admin-web", "admin").secret
        headers = {"Authorization": f"Bearer {token}"}
        document = full()
        changed = json.loads(json.dumps(document))
        changed["password_reset"]["subject"] = "Neues Passwort für {{ contact.name }}"
        with make_client(engine, _NoBroker()) as client:
            steps = [
                ("/v1/groups", {"code": "WHOLESALE", "name": "Retail customers"}, 201),
            ]
            for path, body, status in steps:
                assert client.post(path, json=body, headers=headers).status_code == status
            for body in (document, changed):
                response = client.put("/v1/groups/WHOLESALE/settings", json=body, headers=headers)
                assert response.status_code in (200, 201), response.text
            response = client.post(
                "/v1/groups/WHOLESALE/settings/rollback", json={"version": 1}, headers=headers
            )
            assert response.status_code in (200, 201), response.text
    finally:
        engine.dispose()
    by_cli = list(reversed(audit(cli_changes, "--target", "RETAIL")))
    by_api = list(reversed(audit(cli_changes, "--target", "WHOLESALE")))
    assert {e["actor"] for e in by_api} == {"admin-web"}
    assert [(e["action"], e["diff"]) for e in by_api] == [(e["action"], e["diff"]) for e in by_cli]


class _NoBroker:
    """The settings routes never reach the broker; anything that tries fails the test."""

    def __getattr__(self, name: str) -> Any:
        raise AssertionError(f"the pipeline was asked to {name}")
