"""`dispatcher up --demo` on embedded defaults: demo mail in the sink, clean stop."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.support.harness import free_port, wait_for

pytestmark = pytest.mark.integration


def test_up_demo_fills_the_sink_within_30_seconds_and_stops_on_ctrl_c(tmp_path: Path) -> None:
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("DISPATCHER_", "PROMETHEUS_"))
    }
    port = free_port()
    data = tmp_path / "data"
    script = Path(sys.executable).with_name("dispatcher")
    output = tmp_path / "up.out"
    started = time.monotonic()
    with output.open("wb") as out:
        process = subprocess.Popen(
            [str(script), "up", "--demo", "--data-dir", str(data), "--port", str(port)],
            cwd=tmp_path,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        wait_for(
            lambda: len(list((data / "mail").glob("*.eml"))) >= 7,
            30 - (time.monotonic() - started),
            "seven demo e-mails in the sink",
            interval=0.2,
        )
        text = output.read_text("utf-8")
        assert f"web UI and API   http://127.0.0.1:{port}/" in text
        assert "admin token" in text
        # The bounce server listens where `up` says, and the demo's return paths point at it.
        line = next(x for x in text.splitlines() if x.startswith("  bounce server"))
        bounce_port = int(line.split("127.0.0.1:")[1].split()[0])
        with socket.create_connection(("127.0.0.1", bounce_port), timeout=5) as sock:
            assert sock.recv(200).startswith(b"220 ")
        assert "@bounces.localhost" in (data / "mail" / "index.jsonl").read_text("utf-8")
        subjects = (data / "mail" / "index.jsonl").read_text("utf-8")
        assert "Demo customers: Passwort zurücksetzen" in subjects
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=60) == 0
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
    text = output.read_text("utf-8")
    assert text.rstrip().endswith("stopped"), text[-2000:]
    # Nothing of it keeps running: no process still has the data directory open.
    leftovers = subprocess.run(
        ["pgrep", "-f", str(data)], capture_output=True, text=True, check=False
    ).stdout.split()
    assert leftovers == [], leftovers
