"""`dispatcher api` with DISPATCHER_LOG_FORMAT=json: uvicorn's lines in the workers' format."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

from tests.support.api_server import SERVER_SECRET, ApiServer, dispatcher
from tests.support.harness import free_port

pytestmark = pytest.mark.integration


def test_the_api_process_logs_json_lines(tmp_path: Path) -> None:
    env = {
        "DISPATCHER_DATABASE_URL": f"sqlite:///{tmp_path / 'api.db'}",
        "DISPATCHER_BROKER_URL": f"redis://127.0.0.1:{free_port()}/0",
        "DISPATCHER_API_SECRET": SERVER_SECRET,
        "DISPATCHER_LOG_FORMAT": "json",
    }
    dispatcher(tmp_path, env, "db", "upgrade")
    server = ApiServer(tmp_path, env).start()
    try:
        assert httpx.get(f"{server.url}/healthz", timeout=5).status_code == 200
    finally:
        server.stop()
    lines = server.log_path.read_text("utf-8").splitlines()
    # The command's own first line (where to sign in) is for a person at a terminal.
    assert lines[0].startswith("serving the admin API")
    records = [json.loads(line) for line in lines[1:] if line.strip()]
    assert {r["logger"] for r in records} >= {"uvicorn.error", "uvicorn.access"}
    assert all({"time", "level", "logger", "message", "process"} <= set(r) for r in records)
    access = [r for r in records if r["logger"] == "uvicorn.access"]
    assert any(r["path"] == "/healthz" and r["status"] == 200 for r in access), access
    assert any("Started server process" in r["message"] for r in records)
