"""Real processes for integration tests: an SMTP sink and Celery workers.

Each runs in its own process group and is stopped by signalling that group.
Waits poll a condition against a deadline; nothing sleeps a fixed time.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from dispatcher.smtp.sink import read_index

# Pool processes of every worker a test starts.
WORKER_PROCESSES = 2

ROOT = Path(__file__).resolve().parents[2]
T = TypeVar("T")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for(condition: Callable[[], T], timeout: float, what: str, interval: float = 0.05) -> T:
    """Poll ``condition`` until it returns something truthy; fail after ``timeout``."""
    deadline = time.monotonic() + timeout
    last: T = condition()
    while not last:
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(interval)
        last = condition()
    return last


def _stop_group(process: subprocess.Popen[bytes], grace: float) -> None:
    if process.poll() is not None:
        return
    try:
        os.killpg(process.pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    try:
        process.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)


@dataclass
class Sink:
    """An aiosmtpd sink in its own process; faults come from a JSON file."""

    directory: Path
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None
    # Offer PIPELINING (RFC 2920) in EHLO, as Postfix does.
    pipelining: bool = True

    @property
    def faults_file(self) -> Path:
        return self.directory / "faults.json"

    def start(self) -> Sink:
        self.directory.mkdir(parents=True, exist_ok=True)
        (self.directory / "ready").unlink(missing_ok=True)
        with (self.directory / "sink.log").open("ab") as log:
            self.process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "tests.support.smtp_sink",
                    "--port",
                    str(self.port),
                    "--dir",
                    str(self.directory),
                    "--faults",
                    str(self.faults_file),
                    *([] if self.pipelining else ["--no-pipelining"]),
                ],
                cwd=ROOT,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        wait_for((self.directory / "ready").exists, 20, "the SMTP sink to start")
        return self

    def stop(self) -> None:
        if self.process is not None:
            _stop_group(self.process, 5)

    def set_faults(self, rules: list[dict[str, Any]]) -> None:
        temporary = self.faults_file.with_suffix(".tmp")
        temporary.write_text(json.dumps(rules), "utf-8")
        temporary.replace(self.faults_file)

    def messages(self, recipient: str | None = None) -> list[dict[str, Any]]:
        entries = read_index(self.directory)
        if recipient is None:
            return entries
        return [e for e in entries if recipient in e["rcpt_tos"]]

    def count(self) -> int:
        """How many messages arrived: complete index lines, without parsing them."""
        index = self.directory / "index.jsonl"
        return index.read_bytes().count(b"\n") if index.exists() else 0

    def eml(self, entry: dict[str, Any]) -> bytes:
        return (self.directory / entry["file"]).read_bytes()


def broker_env(prefix: str) -> dict[str, str]:
    return {
        "DISPATCHER_BROKER_URL": os.environ.get(
            "DISPATCHER_TEST_REDIS_URL", "redis://127.0.0.1:6379/0"
        ),
        "DISPATCHER_BROKER_PREFIX": prefix,
    }


@dataclass
class Worker:
    """``celery -A worker worker`` in its own process group."""

    env: dict[str, str]
    log_path: Path
    args: tuple[str, ...] = ()
    process: subprocess.Popen[bytes] | None = None
    name: str = field(default_factory=lambda: f"test-{uuid.uuid4().hex[:8]}")

    def start(self, wait: bool = True) -> Worker:
        celery = Path(sys.executable).with_name("celery")
        command = [str(celery)] if celery.exists() else [sys.executable, "-m", "celery"]
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [
                    *command,
                    "-A",
                    "worker",
                    "worker",
                    "--loglevel=INFO",
                    f"--concurrency={WORKER_PROCESSES}",
                    f"--hostname={self.name}@%h",
                    "--without-mingle",
                    "--without-gossip",
                    *self.args,
                ],
                cwd=ROOT,
                env={**os.environ, **self.env},
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        if wait:
            self.wait_ready()
        return self

    def wait_ready(self, timeout: float = 60) -> None:
        def ready() -> bool:
            if self.process is not None and self.process.poll() is not None:
                raise AssertionError(f"the worker exited early:\n{self.log()[-3000:]}")
            return " ready." in self.log()

        wait_for(ready, timeout, "the Celery worker to be ready", interval=0.1)

    def log(self) -> str:
        return self.log_path.read_text("utf-8", errors="replace") if self.log_path.exists() else ""

    def stop(self, grace: float = 20) -> None:
        if self.process is not None:
            _stop_group(self.process, grace)

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)


@dataclass
class Receiver:
    """A webhook receiver in its own process that verifies each signature."""

    directory: Path
    secret: str
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hooks"

    def start(self) -> Receiver:
        self.directory.mkdir(parents=True, exist_ok=True)
        (self.directory / "ready").unlink(missing_ok=True)
        with (self.directory / "receiver.log").open("ab") as log:
            self.process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "tests.support.webhook_receiver",
                    "--port",
                    str(self.port),
                    "--dir",
                    str(self.directory),
                    "--secret",
                    self.secret,
                ],
                cwd=ROOT,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        wait_for((self.directory / "ready").exists, 20, "the webhook receiver to start")
        return self

    def stop(self) -> None:
        if self.process is not None:
            _stop_group(self.process, 5)

    def down(self, down: bool = True) -> None:
        """Answer 503 to everything (True) or receive again (False)."""
        flag = self.directory / "down"
        if down:
            flag.write_text("down", "utf-8")
        else:
            flag.unlink(missing_ok=True)

    def received(self) -> list[dict[str, Any]]:
        path = self.directory / "received.jsonl"
        if not path.exists():
            return []
        found = []
        for line in path.read_text("utf-8").splitlines():
            with contextlib.suppress(json.JSONDecodeError):
                found.append(json.loads(line))
        return found


@dataclass
class BounceServer:
    """``dispatcher bounces serve`` in its own process."""

    env: dict[str, str]
    log_path: Path
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    def start(self) -> BounceServer:
        script = Path(sys.executable).with_name("dispatcher")
        command = [str(script)] if script.exists() else [sys.executable, "-m", "dispatcher"]
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [*command, "bounces", "serve", "--port", str(self.port)],
                cwd=ROOT,
                env={**os.environ, **self.env},
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

        def listening() -> bool:
            if self.process is not None and self.process.poll() is not None:
                raise AssertionError(f"the bounce server exited:\n{self.log_path.read_text()}")
            with socket.socket() as sock:
                return sock.connect_ex(("127.0.0.1", self.port)) == 0

        wait_for(listening, 30, "the bounce server to listen", interval=0.1)
        return self

    def stop(self) -> None:
        if self.process is not None:
            _stop_group(self.process, 10)
