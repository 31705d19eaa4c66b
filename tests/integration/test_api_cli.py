"""``dispatcher tokens`` and ``dispatcher api`` from the command line."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from config_store.database import make_engine
from dispatcher.admin.access import AccessStore
from tests.support.cli import run


def migrated(workdir: Path) -> None:
    assert run("db", "upgrade", cwd=workdir).code == 0


def test_tokens_are_shown_once_listed_without_secrets_and_revoked(workdir: Path) -> None:
    migrated(workdir)
    created = run("tokens", "create", "--scope", "admin", "--name", "alice", cwd=workdir)
    assert created.code == 0
    token = created.out.strip()
    assert created.out == token + "\n"
    assert len(token) >= 43
    assert "shown only now" in created.err
    assert token not in created.err
    listed = run("tokens", "list", cwd=workdir)
    assert listed.code == 0
    assert "alice" in listed.out
    assert "admin" in listed.out
    assert "never used" in listed.out
    as_json = json.loads(run("tokens", "list", "--json", cwd=workdir).out)
    assert [(t["name"], t["scope"], t["revoked_at"]) for t in as_json] == [("alice", "admin", None)]
    digest = hashlib.sha256(token.encode()).hexdigest()
    for output in (listed.out, json.dumps(as_json)):
        assert token not in output
        assert digest not in output
    revoked = run("tokens", "revoke", "alice", cwd=workdir)
    assert revoked.code == 0
    assert "revoked token 'alice'" in revoked.out
    assert "revoked" in run("tokens", "list", cwd=workdir).out


def test_token_commands_refuse_bad_input_in_one_line(workdir: Path) -> None:
    migrated(workdir)
    assert run("tokens", "create", "--scope", "read", "--name", "bob", cwd=workdir).code == 0
    for args, code, words in [
        (("tokens", "create", "--scope", "read", "--name", "bob"), 1, "exists already"),
        (("tokens", "create", "--scope", "root", "--name", "x"), 2, "'root' is not one of"),
        (("tokens", "create", "--scope", "read"), 2, "Missing option '--name'"),
        (("tokens", "create", "--scope", "read", "--name", " "), 1, "must not be empty"),
        (("tokens", "revoke", "nobody"), 1, "no token named 'nobody'"),
    ]:
        result = run(*args, cwd=workdir)
        assert result.code == code, (args, result.err)
        assert words in result.err
        assert result.err.startswith("error: ")
        assert len(result.err.strip().splitlines()) == 1
        assert "Traceback" not in result.err


def test_token_changes_are_audited(workdir: Path) -> None:
    migrated(workdir)
    run("tokens", "create", "--scope", "publish", "--name", "backend", cwd=workdir)
    run("tokens", "revoke", "backend", cwd=workdir)
    engine = make_engine(f"sqlite:///{workdir / 'cli.db'}")
    try:
        entries = AccessStore(engine).audit()
    finally:
        engine.dispose()
    assert [(e.action, e.target, e.diff) for e in entries] == [
        ("token.revoke", "token:backend", {"scope": "publish"}),
        ("token.create", "token:backend", {"scope": "publish"}),
    ]
    assert entries[0].actor.endswith("(cli)") or entries[0].actor == "cli"


def test_commands_on_a_database_without_schema_say_how_to_fix_it(workdir: Path) -> None:
    for args in (("tokens", "list"), ("api", "--port", "1")):
        result = run(*args, cwd=workdir)
        assert result.code == 1
        assert "run: dispatcher db upgrade" in result.err
        assert len(result.err.strip().splitlines()) == 1


def test_api_command_help_names_host_and_port(workdir: Path) -> None:
    result = run("api", "--help", cwd=workdir)
    assert result.code == 0
    assert "--host" in result.out
    assert "--port" in result.out
