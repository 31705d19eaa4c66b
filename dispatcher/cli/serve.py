"""Long-running servers: ``dispatcher api`` and ``dispatcher sink``."""

from __future__ import annotations

import asyncio
import contextlib
import copy
import errno
import logging
import resource
import signal
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click
import h11
import uvicorn
import uvicorn.config
from uvicorn.protocols.http.h11_impl import H11Protocol

from config_store.database import get_engine, require_schema
from dispatcher.cli.base import cli
from dispatcher.smtp.sink import start_sink

# How the admin API's server treats connections (``dispatcher api``, and so
# ``dispatcher up``). Request bodies are bounded by the app itself
# (dispatcher/api/app.py); a reverse proxy in front (deploy/nginx/) is the
# place for per-client limits.
#
# Requests in progress plus open connections beyond which uvicorn answers 503:
# the thread pool runs 40 requests at once, so more only wait, holding memory.
LIMIT_CONCURRENCY = 200
# A request's head (request line and headers) must be complete this many
# seconds after the connection opened or its first byte came; uvicorn has no
# such limit, and a client sending one header line every 10 s was held forever.
HEADER_TIMEOUT = 10.0
# Seconds an idle kept-alive connection stays open (uvicorn's default).
KEEP_ALIVE_SECONDS = 5
# A client still sending a body when its answer is complete (a 413, say) is
# read on, and what it sends dropped, for this long before the connection is
# closed: closing with unread data sends a reset, which can destroy the
# answer before the client reads it ("lingering close", as nginx does it).
LINGER_SECONDS = 2.0
LINGER_BYTES = 8 * 1024 * 1024
# The largest request head h11 buffers (its default, stated here): 16 KiB.
MAX_HEAD_BYTES = 16 * 1024
# On SIGTERM, requests in progress get this long before the server exits.
GRACEFUL_SHUTDOWN_SECONDS = 10
# Open connections beyond this are closed at once; it stays below the open
# file limit, so that accepting never fails with EMFILE (asyncio then retries
# in a tight loop and logs every attempt; see RepeatedResourceErrors). asyncio
# accepts up to the listen backlog in one go before any connection is seen,
# so that many descriptors are kept in reserve, and 100 for files and the
# database.
MAX_CONNECTIONS = 1000
BACKLOG = 256
FILE_RESERVE = BACKLOG + 100
WANTED_OPEN_FILES = 65_536
# Errors that mean the process ran out of something; logged once per interval.
RESOURCE_ERRNOS = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM})
RESOURCE_LOG_INTERVAL = 60.0


class GuardedH11Protocol(H11Protocol):
    """uvicorn's h11 protocol with a deadline for the request head, a connection
    cap, and a lingering close.

    The deadline runs from the connection's start and, on a kept-alive
    connection, from the first byte of each further request; it is not
    extended by bytes that trickle in. A client that has not sent a whole
    request head by then is disconnected without an answer, as uvicorn does
    with idle kept-alive connections.
    """

    header_timeout: float = HEADER_TIMEOUT
    max_connections: int = MAX_CONNECTIONS

    _head_timer: asyncio.TimerHandle | None = None
    _linger_timer: asyncio.TimerHandle | None = None
    _lingered = 0
    _close_now: Callable[[], None] | None = None
    _capped_warned_at: float = float("-inf")  # shared by all connections

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        if len(self.connections) > self.max_connections:
            transport.close()
            self._warn_capped()
            return
        self._close_now = transport.close
        # uvicorn closes the transport itself (after "Connection: close");
        # this is the one place to make that close linger.
        transport.close = self._close  # type: ignore[method-assign]
        self._arm_head_timer()

    def _warn_capped(self) -> None:
        now = time.monotonic()
        owner = type(self)
        if now - owner._capped_warned_at >= RESOURCE_LOG_INTERVAL:
            owner._capped_warned_at = now
            self.logger.warning(
                "more than %d connections are open; new ones are closed at once "
                "(logged once a minute)",
                self.max_connections,
            )

    def data_received(self, data: bytes) -> None:
        if self._linger_timer is not None:
            self._lingered += len(data)
            if self._lingered > LINGER_BYTES:
                self._finish()
            return  # Dropped: the answer is out, the connection closes.
        if self.conn.their_state is h11.IDLE:
            # Waiting for a request's head: the first byte of a further
            # request on a kept-alive connection starts its deadline.
            self._arm_head_timer()
        super().data_received(data)
        if self.conn.their_state is not h11.IDLE:
            self._disarm_head_timer()

    def eof_received(self) -> None:
        if self._linger_timer is not None:
            self._finish()  # The client is done sending: close now.

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm_head_timer()
        if self._linger_timer is not None:
            self._linger_timer.cancel()
            self._linger_timer = None
        super().connection_lost(exc)

    def _close(self) -> None:
        transport = self.transport
        if (
            self._linger_timer is None
            and not transport.is_closing()
            and self.conn.their_state is h11.SEND_BODY
        ):
            # Answered while the client still sends its body: end our side
            # (the answer goes out first), read on and drop, close soon.
            if transport.can_write_eof():
                transport.write_eof()
            transport.resume_reading()
            self._linger_timer = self.loop.call_later(LINGER_SECONDS, self._finish)
            return
        self._finish()

    def _finish(self) -> None:
        if self._linger_timer is not None:
            self._linger_timer.cancel()
            self._linger_timer = None
        if self._close_now is not None:
            self._close_now()

    def _arm_head_timer(self) -> None:
        if self._head_timer is None:
            self._head_timer = self.loop.call_later(self.header_timeout, self._head_too_slow)

    def _disarm_head_timer(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_too_slow(self) -> None:
        self._head_timer = None
        if self.conn.their_state is h11.IDLE and not self.transport.is_closing():
            with contextlib.suppress(h11.LocalProtocolError):
                self.conn.send(h11.ConnectionClosed())
            self.transport.close()


def guarded_protocol(header_timeout: float, max_connections: int) -> type[H11Protocol]:
    """``GuardedH11Protocol`` with these limits, as uvicorn's ``http`` class."""
    return type(
        "GuardedH11Protocol",
        (GuardedH11Protocol,),
        {"header_timeout": header_timeout, "max_connections": max_connections},
    )


class RepeatedResourceErrors(logging.Filter):
    """Let an out-of-resources error through once per interval, with a count of the rest.

    At the open file limit asyncio's accept loop fails and logs, with a
    traceback, up to its backlog (2,048) times per attempt; so does every
    request that opens a file. One line a minute says the same.
    """

    def __init__(
        self,
        interval: float = RESOURCE_LOG_INTERVAL,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__()
        self.interval = interval
        self.clock = clock
        self._quiet_until: dict[tuple[str, int], float] = {}
        self._suppressed: dict[tuple[str, int], int] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if isinstance(exc, ValueError) and "_start_serving" in record.getMessage():
            # After an out-of-resources error asyncio retries accepting a
            # moment later; when the server has closed its socket meanwhile
            # (shutting down), each pending retry fails on fd -1 with a
            # traceback. Nothing is lost: there is nothing left to serve.
            return False
        if not isinstance(exc, OSError) or exc.errno not in RESOURCE_ERRNOS:
            return True
        key = (record.name, exc.errno)
        now = self.clock()
        if now < self._quiet_until.get(key, float("-inf")):
            self._suppressed[key] = self._suppressed.get(key, 0) + 1
            return False
        self._quiet_until[key] = now + self.interval
        suppressed = self._suppressed.pop(key, 0)
        if suppressed:
            record.msg = (
                f"{record.msg} ({suppressed} more like it in the last "
                f"{self.interval:.0f} s were not logged)"
            )
        return True


def log_config() -> dict[str, Any]:
    """uvicorn's logging, with asyncio's logger beside it and both filtered."""
    config = copy.deepcopy(uvicorn.config.LOGGING_CONFIG)
    config.setdefault("filters", {})["resource_errors"] = {"()": RepeatedResourceErrors}
    loggers = config["loggers"]
    loggers["uvicorn.error"]["filters"] = ["resource_errors"]
    loggers["asyncio"] = {
        "handlers": ["default"],
        "level": "WARNING",
        "propagate": False,
        "filters": ["resource_errors"],
    }
    return config


def raise_open_file_limit(wanted: int = WANTED_OPEN_FILES) -> int:
    """Raise the soft open-file limit towards the hard one; return the soft limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if soft != resource.RLIM_INFINITY and soft < target:
        with contextlib.suppress(ValueError, OSError):  # Not allowed here: keep it.
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
    return soft


def connection_cap(open_files: int) -> int:
    """How many connections to keep open with ``open_files`` descriptors allowed."""
    return min(MAX_CONNECTIONS, max(open_files - FILE_RESERVE, open_files // 2))


@cli.command("api")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8000, show_default=True, type=click.IntRange(1, 65535))
@click.option(
    "--limit-concurrency",
    default=LIMIT_CONCURRENCY,
    show_default=True,
    type=click.IntRange(1, 100_000),
    help="Connections and requests in progress beyond which the server answers 503.",
)
@click.option(
    "--header-timeout",
    default=HEADER_TIMEOUT,
    show_default=True,
    type=click.FloatRange(0.5, 300),
    help="Seconds a client has to send a whole request line and headers.",
)
def api_command(host: str, port: int, limit_concurrency: int, header_timeout: float) -> None:
    """Serve the admin HTTP API and the web UI."""
    # Refuse to start on a database without this version's schema: every
    # request would fail, and the fix is one command away.
    require_schema(get_engine())
    shown = f"[{host}]" if ":" in host else host
    click.echo(
        f"serving the admin API and web UI on http://{shown}:{port}/ (sign in with a token "
        "from: dispatcher tokens create --scope admin --name NAME)",
        err=True,
    )
    max_connections = connection_cap(raise_open_file_limit())
    # The app is named, not imported: the command line and the HTTP API are
    # two front doors that do not know each other.
    uvicorn.run(
        "dispatcher.api:create_app",
        factory=True,
        host=host,
        port=port,
        log_level="info",
        log_config=log_config(),
        proxy_headers=True,
        http=guarded_protocol(header_timeout, max_connections),
        limit_concurrency=limit_concurrency,
        timeout_keep_alive=KEEP_ALIVE_SECONDS,
        timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_SECONDS,
        h11_max_incomplete_event_size=MAX_HEAD_BYTES,
        backlog=BACKLOG,
    )


@cli.command("sink")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=2525, show_default=True, type=click.IntRange(1, 65535))
@click.option(
    "--dir",
    "directory",
    default="mail",
    show_default=True,
    help="Where every received message is kept as an .eml file.",
)
def sink_command(host: str, port: int, directory: str) -> None:
    """A local SMTP server that keeps every message as an .eml file (for development)."""
    controller = start_sink(Path(directory), host, port)
    click.echo(
        f"mail sink on {host}:{port}, storing into {Path(directory).resolve()}; Ctrl-C stops"
    )
    stop = threading.Event()
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    stop.wait()
    controller.stop()
