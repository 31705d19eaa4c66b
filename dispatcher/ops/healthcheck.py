"""The image's HEALTHCHECK: is the container's own server answering?

One image runs every part (API, workers, beat, bounce server, Flower, sink);
``python -m dispatcher.ops.healthcheck`` reads what the container's main
process (PID 1) runs and checks that:

- ``dispatcher api``: ``GET /healthz`` on its port answers 200;
- ``celery ... worker``: the worker answers a ping under its node name;
- ``dispatcher bounces serve`` and ``dispatcher sink``: the SMTP greeting (220);
- ``celery ... flower``: its port accepts a connection;
- anything else (beat, a one-shot command): the process runs, which is all.

Exit status 0 is healthy, 1 is not; one line says why. The compose file's
own healthchecks (``dispatcher worker-check``, ``/readyz``) go further.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import urllib.request
from collections.abc import Sequence
from pathlib import Path

TIMEOUT = 5.0


def _option(argv: Sequence[str], names: Sequence[str], default: str | None) -> str | None:
    for index, arg in enumerate(argv):
        for name in names:
            if arg == name and index + 1 < len(argv):
                return argv[index + 1]
            if arg.startswith(f"{name}="):
                return arg.split("=", 1)[1]
    return default


def _http_ok(port: int) -> str | None:
    url = f"http://127.0.0.1:{port}/healthz"
    try:
        with urllib.request.urlopen(url, timeout=TIMEOUT) as response:
            if response.status == 200:
                return None
            return f"{url} answered {response.status}"
    except OSError as exc:
        return f"{url}: {exc}"


def _smtp_greets(port: int) -> str | None:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT) as sock:
            greeting = sock.recv(512)
            sock.sendall(b"QUIT\r\n")
    except OSError as exc:
        return f"SMTP on port {port}: {exc}"
    return None if greeting.startswith(b"220") else f"SMTP on port {port} greeted {greeting!r}"


def _accepts(port: int) -> str | None:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT):
            return None
    except OSError as exc:
        return f"port {port}: {exc}"


def _worker_answers(argv: Sequence[str]) -> str | None:
    node = _option(argv, ("-n", "--hostname"), "celery@%h") or "celery@%h"
    node = node.replace("%h", socket.gethostname())
    if "@" not in node:
        node = f"celery@{node}"
    command = [sys.executable, "-m", "celery", "-A", "worker", "inspect", "ping"]
    completed = subprocess.run(  # noqa: S603 - our own command, fixed parts
        [*command, "--destination", node, "--timeout", str(TIMEOUT)],
        capture_output=True,
        text=True,
        timeout=TIMEOUT * 4,
        check=False,
    )
    if completed.returncode == 0 and "pong" in completed.stdout:
        return None
    return f"worker {node} did not answer a ping"


# celery's global options that take a value, before the subcommand.
_CELERY_VALUE_OPTIONS = frozenset(
    {"-A", "--app", "-b", "--broker", "--result-backend", "--loader", "--config", "--workdir"}
)


def _celery_subcommand(words: Sequence[str]) -> str | None:
    rest = list(words[words.index("celery") + 1 :])
    while rest:
        word = rest.pop(0)
        if word in _CELERY_VALUE_OPTIONS:
            rest = rest[1:]
        elif not word.startswith("-"):
            return word
    return None


def problem(argv: Sequence[str]) -> str | None:
    """What is wrong with the server ``argv`` runs, or None when it answers."""
    words = [Path(arg).name if index == 0 else arg for index, arg in enumerate(argv)]

    def port(default: str) -> int:
        return int(_option(words, ("--port",), default) or default)

    if "celery" in words[:3]:
        subcommand = _celery_subcommand(words)
        if subcommand == "worker":
            return _worker_answers(words)
        if subcommand == "flower":
            return _accepts(port("5555"))
        return None
    if "dispatcher" in words[:3]:
        if "api" in words:
            return _http_ok(port("8000"))
        if "bounces" in words and "serve" in words:
            return _smtp_greets(port("2526"))
        if "sink" in words:
            return _smtp_greets(port("2525"))
    return None


def main_process_argv(proc: Path = Path("/proc/1/cmdline")) -> list[str]:
    return [arg for arg in proc.read_bytes().decode("utf-8", "replace").split("\0") if arg]


def main() -> int:
    try:
        argv = main_process_argv()
    except OSError as exc:
        print(f"unhealthy: cannot read the main process's command line ({exc})")
        return 1
    found = problem(argv)
    if found is not None:
        print(f"unhealthy: {found}")
        return 1
    print("healthy")
    return 0


if __name__ == "__main__":
    sys.exit(main())
