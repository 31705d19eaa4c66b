"""The ``dispatcher`` command for groups, settings and previews, run for real."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from config_store.database import head_revision, make_engine, upgrade
from config_store.document import dump
from config_store.repository import SettingsRepository
from tests.support.cli import Result, run
from tests.support.documents import FULL, addresses_only, full


def ok(result: Result) -> str:
    assert result.code == 0, result.err
    assert "Traceback" not in result.err
    return result.out


def one_line_error(result: Result) -> str:
    assert result.code != 0
    assert "Traceback" not in result.err + result.out
    lines = result.err.strip().splitlines()
    assert len(lines) == 1, result.err
    assert lines[0].startswith("error: ")
    return lines[0]


@pytest.fixture
def ready(workdir: Path) -> Iterator[Path]:
    """A migrated database with the group RETAIL, prepared in-process for speed."""
    engine = make_engine(os.environ["DISPATCHER_DATABASE_URL"])
    upgrade(engine)
    SettingsRepository(engine).add_group("RETAIL", "Retail customers")
    engine.dispose()
    return workdir


def test_db_upgrade_and_groups_add_from_the_command_line(workdir: Path) -> None:
    out = ok(run("db", "upgrade", cwd=workdir))
    assert out.strip().endswith(f"is at schema {head_revision()}")
    out = ok(run("groups", "add", "RETAIL", "--name", "Retail customers", cwd=workdir))
    assert out.startswith("added customer group RETAIL (Retail customers)")
    shown = json.loads(ok(run("groups", "show", "RETAIL", "--json", cwd=workdir)))
    assert (shown["code"], shown["name"], shown["current_version"]) == (
        "RETAIL",
        "Retail customers",
        None,
    )


def test_import_then_export_gives_back_the_same_document(ready: Path) -> None:
    source = ready / "doc.yaml"
    source.write_text(dump(FULL, "yaml"), "utf-8")
    out = ok(run("settings", "import", "RETAIL", "doc.yaml", "--actor", "alice", cwd=ready))
    assert out.strip() == "saved RETAIL settings as version 1"
    exported = ok(run("settings", "export", "RETAIL", cwd=ready))
    assert exported == source.read_text("utf-8")
    assert yaml.safe_load(exported) == FULL
    as_json = ok(run("settings", "export", "RETAIL", "--format", "json", cwd=ready))
    assert json.loads(as_json) == FULL


def test_import_from_stdin_as_json(ready: Path) -> None:
    out = ok(run("settings", "import", "RETAIL", "-", cwd=ready, stdin=json.dumps(FULL)))
    assert "version 1" in out
    again = ok(run("settings", "import", "RETAIL", "-", cwd=ready, stdin=json.dumps(FULL)))
    assert again.strip() == "no changes; RETAIL settings stay at version 1"


def test_import_for_unknown_group_is_one_line_and_saves_nothing(ready: Path) -> None:
    (ready / "doc.yaml").write_text(dump(FULL, "yaml"), "utf-8")
    line = one_line_error(run("settings", "import", "WHOLESALE", "doc.yaml", cwd=ready))
    assert line == (
        "error: customer group 'WHOLESALE' is not set up for the portal; add it first with: "
        'dispatcher groups add WHOLESALE --name "..."'
    )
    listing = ok(run("groups", "list", "--json", cwd=ready))
    assert [(g["code"], g["current_version"]) for g in json.loads(listing)] == [("RETAIL", None)]


def test_three_errors_are_named_and_nothing_is_saved(ready: Path) -> None:
    (ready / "good.yaml").write_text(dump(FULL, "yaml"), "utf-8")
    ok(run("settings", "import", "RETAIL", "good.yaml", cwd=ready))
    document = full()
    document["internal_addresses"]["access_requests_to"] = "portal-access.example.com"
    document["password_reset"]["subject"] = "Passwort\nzurücksetzen"
    document["new_validation"]["body"] = "Ihr Link: {{ reset_url }}"
    (ready / "bad.yaml").write_text(dump(document, "yaml"), "utf-8")
    result = run("settings", "import", "RETAIL", "bad.yaml", cwd=ready)
    assert result.code == 1
    assert "Traceback" not in result.err
    lines = result.err.strip().splitlines()
    assert lines[0].startswith(
        "error: invalid settings for group 'RETAIL': internal_addresses.access_requests_to: "
    )
    assert lines[0].endswith("(and 2 more)")
    assert [line.split(":")[0].strip() for line in lines[1:4]] == [
        "internal_addresses.access_requests_to",
        "new_validation.body",
        "password_reset.subject",
    ]
    assert lines[-1] == "nothing was saved or sent"
    history = json.loads(ok(run("settings", "history", "RETAIL", "--json", cwd=ready)))
    assert [v["version"] for v in history] == [1]
    assert yaml.safe_load(ok(run("settings", "export", "RETAIL", cwd=ready))) == FULL


def test_history_and_rollback(ready: Path) -> None:
    (ready / "v1.yaml").write_text(dump(FULL, "yaml"), "utf-8")
    (ready / "v2.yaml").write_text(dump(addresses_only(), "yaml"), "utf-8")
    ok(run("settings", "import", "RETAIL", "v1.yaml", "--actor", "alice", cwd=ready))
    ok(run("settings", "import", "RETAIL", "v2.yaml", "--actor", "bob", cwd=ready))
    text = ok(run("settings", "history", "RETAIL", cwd=ready))
    lines = text.strip().splitlines()
    assert lines[0].startswith("* v2")
    assert "bob" in lines[0]
    assert lines[1].startswith("  v1")
    assert "alice" in lines[1]
    out = ok(run("settings", "rollback", "RETAIL", "1", "--actor", "carol", cwd=ready))
    assert out.strip() == "saved RETAIL settings as version 3, equal to v1"
    assert yaml.safe_load(ok(run("settings", "export", "RETAIL", cwd=ready))) == FULL
    history = json.loads(ok(run("settings", "history", "RETAIL", "--json", cwd=ready)))
    assert [(v["version"], v["actor"], v["restored_from"]) for v in history] == [
        (3, "carol", 1),
        (2, "bob", None),
        (1, "alice", None),
    ]
    assert all(v["created_at"] for v in history)
    old = yaml.safe_load(ok(run("settings", "export", "RETAIL", "--version", "2", cwd=ready)))
    assert old == addresses_only()


def test_effective_export_shows_sources(ready: Path) -> None:
    (ready / "doc.yaml").write_text(dump(addresses_only(), "yaml"), "utf-8")
    ok(run("settings", "import", "RETAIL", "doc.yaml", cwd=ready))
    view = yaml.safe_load(
        ok(run("settings", "export", "RETAIL", "--effective", "--locale", "en", cwd=ready))
    )
    assert view["password_reset"]["subject"]["source"] == "built-in (en)"
    assert view["internal_addresses"]["send_from"] == {
        "value": "portal@example.com",
        "source": "group",
    }


def test_preview_renders_subject_text_and_html(ready: Path) -> None:
    (ready / "doc.yaml").write_text(dump(FULL, "yaml"), "utf-8")
    ok(run("settings", "import", "RETAIL", "doc.yaml", cwd=ready))
    out = ok(run("preview", "RETAIL", "password.reset", "--locale", "en", cwd=ready))
    assert "Subject:  Reset your password" in out
    assert "--- text/plain ---\nLink: https://portal.example.com/reset?token=3f9a1c" in out
    assert '<a href="https://portal.example.com/reset?token=3f9a1c"' in out
    event = {
        "event_id": "e-1",
        "type": "username.forgotten",
        "customer_group": "RETAIL",
        "contact": {"email": "max@example.com", "name": "Max", "locale": "de"},
        "username": "max.mustermann",
    }
    (ready / "event.json").write_text(json.dumps(event), "utf-8")
    data = json.loads(
        ok(
            run(
                "preview",
                "RETAIL",
                "username.forgotten",
                "--event",
                "event.json",
                "--format",
                "json",
                cwd=ready,
            )
        )
    )
    assert data["to"] == "Max <max@example.com>"
    assert data["text"] == "Ihr Benutzername lautet max.mustermann.\n"


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["groups", "show", "NOPE"], "error: customer group 'NOPE' is not set up"),
        (["groups", "add", "bad code", "--name", "x"], "is not a valid group code"),
        (["groups", "add", "RETAIL", "--name", "Again"], "'RETAIL' is already set up"),
        (["groups", "add", "X"], "Missing option '--name'"),
        (["settings", "import", "RETAIL", "missing.yaml"], "missing.yaml: no such file"),
        (["settings", "export", "RETAIL"], "has no portal e-mail settings yet"),
        (["settings", "export", "RETAIL", "--version", "x"], "'x' is not a valid integer"),
        (["settings", "rollback", "RETAIL", "9"], "has no settings version 9"),
        (["preview", "RETAIL", "password.reset"], "has no portal e-mail settings yet"),
        (["preview", "RETAIL", "nonsense"], "unknown e-mail kind 'nonsense'"),
        (["nonsense"], "No such command 'nonsense'"),
    ],
)
def test_user_errors_are_one_line_without_traceback(
    ready: Path, args: list[str], expected: str
) -> None:
    assert expected in one_line_error(run(*args, cwd=ready))


def test_bad_yaml_is_one_line(ready: Path) -> None:
    (ready / "broken.yaml").write_text("internal_addresses: [\n", "utf-8")
    line = one_line_error(run("settings", "import", "RETAIL", "broken.yaml", cwd=ready))
    assert line.startswith("error: broken.yaml: cannot read the settings at line 2")


def test_commands_before_db_upgrade_say_what_to_run(workdir: Path) -> None:
    line = one_line_error(run("groups", "list", cwd=workdir))
    assert line.endswith(
        f"has no schema yet, this version needs {head_revision()}; run: dispatcher db upgrade"
    )


def test_bad_database_url_is_one_line(workdir: Path) -> None:
    line = one_line_error(
        run("groups", "list", cwd=workdir, env={"DISPATCHER_DATABASE_URL": "nonsense"})
    )
    assert "DISPATCHER_DATABASE_URL is not a database URL" in line


def test_settings_import_takes_an_unquoted_german_sender_and_any_case_of_the_code(
    ready: Path,
) -> None:
    document = full()
    document["internal_addresses"]["send_from"] = (
        "Großhandel Portal <noreply@grosshandel.example.com>"
    )
    source = ready / "doc.yaml"
    source.write_text(dump(document, "yaml"), "utf-8")
    out = ok(run("settings", "import", "retail", "doc.yaml", cwd=ready))
    assert out.strip() == "saved RETAIL settings as version 1"
    exported = yaml.safe_load(ok(run("settings", "export", "Retail", cwd=ready)))
    assert exported["internal_addresses"]["send_from"] == (
        "Großhandel Portal <noreply@grosshandel.example.com>"
    )
    error = one_line_error(run("groups", "add", "retail", "--name", "Again", cwd=ready))
    assert "'RETAIL' is already set up" in error
