"""The image's HEALTHCHECK (dispatcher/ops/healthcheck.py) for each kind of container."""

from __future__ import annotations

import socket
import subprocess
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any

import pytest

from dispatcher.ops import healthcheck
from tests.support.harness import free_port


@pytest.fixture
def healthz() -> Iterator[int]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200 if self.path == "/healthz" else 404)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield int(server.server_address[1])
    server.shutdown()
    server.server_close()


@pytest.fixture
def smtp() -> Iterator[int]:
    listener = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()

    def serve() -> None:
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                connection, _ = listener.accept()
            except TimeoutError:
                continue
            with connection:
                connection.sendall(b"220 test ESMTP\r\n")
                connection.recv(100)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield int(listener.getsockname()[1])
    stop.set()
    thread.join()
    listener.close()


def test_the_api_is_healthy_when_healthz_answers(healthz: int) -> None:
    argv = ["/usr/local/bin/dispatcher", "api", "--host", "0.0.0.0", "--port", str(healthz)]
    assert healthcheck.problem(argv) is None
    closed = free_port()
    found = healthcheck.problem(["dispatcher", "api", f"--port={closed}"])
    assert found is not None
    assert f"http://127.0.0.1:{closed}/healthz" in found


def test_smtp_servers_must_greet(smtp: int) -> None:
    assert healthcheck.problem(["dispatcher", "bounces", "serve", "--port", str(smtp)]) is None
    assert healthcheck.problem(["python", "-m", "dispatcher", "sink", "--port", str(smtp)]) is None
    assert healthcheck.problem(["dispatcher", "sink", "--port", str(free_port())]) is not None


def test_a_worker_is_pinged_under_its_node_name(monkeypatch: pytest.MonkeyPatch) -> None:
    asked: list[list[str]] = []

    def run(command: list[str], **_: Any) -> subprocess.CompletedProcess[str]:
        asked.append(command)
        return subprocess.CompletedProcess(command, 0, "-> bulk@box: OK\n        pong\n", "")

    monkeypatch.setattr(healthcheck.subprocess, "run", run)
    monkeypatch.setattr(healthcheck.socket, "gethostname", lambda: "box")
    argv = ["celery", "-A", "worker", "worker", "-Q", "dispatcher.bulk", "-n", "bulk@%h"]
    assert healthcheck.problem(argv) is None
    assert asked[0][-4:] == ["--destination", "bulk@box", "--timeout", "5.0"]


def test_beat_and_one_shot_commands_are_healthy_while_they_run() -> None:
    assert healthcheck.problem(["celery", "-A", "worker", "beat"]) is None
    assert healthcheck.problem(["dispatcher", "db", "upgrade"]) is None
    assert healthcheck.problem(["dispatcher", "--help"]) is None


def test_the_main_process_command_line_is_read_from_proc(tmp_path: Path) -> None:
    cmdline = tmp_path / "cmdline"
    cmdline.write_bytes(b"/usr/local/bin/python\0-m\0celery\0-A\0worker\0beat\0")
    argv = healthcheck.main_process_argv(cmdline)
    assert argv == ["/usr/local/bin/python", "-m", "celery", "-A", "worker", "beat"]
