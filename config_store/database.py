"""Engines and sessions, one set per process, and the schema's migrations.

Celery's prefork pool forks after import; a connection inherited across a
fork is shared by two processes and fails in ways that look random. Engines
are therefore created lazily and forgotten in every child after a fork.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event, inspect, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import (
    ArgumentError,
    DBAPIError,
    DisconnectionError,
    InterfaceError,
    OperationalError,
    SQLAlchemyError,
)
from sqlalchemy.orm import Session, sessionmaker

from dispatcher.errors import DispatcherError, SchemaNotReady, StoreUnavailable
from dispatcher.settings import get_settings

_LOCK = threading.Lock()
_ENGINES: dict[str, Engine] = {}
_SCHEMA_CHECKED: set[str] = set()
MIGRATIONS = Path(__file__).parent / "migrations"
SQLITE_BUSY_MS = 30_000
IDLE_PING_SECONDS = 10.0


def _forget_engines_after_fork() -> None:
    for engine in _ENGINES.values():
        # close=False: the parent still owns these sockets; only drop them here.
        engine.dispose(close=False)
    _ENGINES.clear()


os.register_at_fork(after_in_child=_forget_engines_after_fork)


def redact(url: str) -> str:
    """The URL with its password hidden, for logs and messages."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return "<unparseable database URL>"


def make_engine(url: str) -> Engine:
    """A new engine configured for this product's access pattern."""
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise DispatcherError(
            "DISPATCHER_DATABASE_URL is not a database URL; use e.g. sqlite:///dispatcher.db "
            "or postgresql+psycopg://user@host/db"
        ) from None
    if parsed.get_backend_name() == "sqlite":
        return _sqlite_engine(url)
    kwargs: dict[str, Any] = {"pool_size": 5, "max_overflow": 5}
    if parsed.get_backend_name() == "postgresql":
        kwargs["connect_args"] = {"connect_timeout": 10}
    engine = create_engine(url, **kwargs)
    _ping_idle_connections(engine)
    return engine


def _ping_idle_connections(engine: Engine) -> None:
    """Check a pooled connection before use only when it sat idle for a while.

    SQLAlchemy's ``pool_pre_ping`` asks the server on every checkout: one
    more round trip for every transaction on the hot path. A connection in
    steady use is known to be alive; one idle for longer than
    ``IDLE_PING_SECONDS`` may have been cut by a database restart or a
    firewall, so it is asked first and replaced if it does not answer. A
    connection that breaks in use is still handled: the error invalidates the
    pool and the work is retried (``StoreUnavailable``).
    """

    @event.listens_for(engine, "checkout")
    def _checkout(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        now = time.monotonic()
        last = record.info.get("used_at")
        record.info["used_at"] = now
        if last is None or now - last < IDLE_PING_SECONDS:
            return
        try:
            cursor = dbapi_connection.cursor()
            try:
                cursor.execute("SELECT 1")
            finally:
                cursor.close()
        except Exception as exc:
            # The pool retries the checkout with a fresh connection.
            raise DisconnectionError(f"an idle connection did not answer: {exc}") from exc


def _sqlite_engine(url: str) -> Engine:
    engine = create_engine(url, connect_args={"timeout": SQLITE_BUSY_MS / 1000})

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy, not the driver, decide when transactions begin, so
        # that every transaction can take the write lock up front (below).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_MS}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        # With several worker processes writing, a deferred transaction that
        # later needs the write lock can fail at once with "database is
        # locked"; IMMEDIATE waits for the lock (busy_timeout) instead.
        connection.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


def database_url() -> str:
    return get_settings().database_url


def get_engine(url: str | None = None) -> Engine:
    """The process's engine for ``url`` (default: the configured database)."""
    url = url or database_url()
    with _LOCK:
        engine = _ENGINES.get(url)
        if engine is None:
            engine = _ENGINES[url] = make_engine(url)
        return engine


_FACTORIES: dict[int, sessionmaker[Session]] = {}


@contextmanager
def _unavailable_as_store_errors(engine: Engine) -> Iterator[None]:
    try:
        yield
    except (OperationalError, InterfaceError) as exc:
        raise StoreUnavailable(
            f"the database {redact(str(engine.url))} is unavailable: {first_line(exc)}"
        ) from exc
    except DBAPIError as exc:
        if exc.connection_invalidated:
            raise StoreUnavailable(f"the database connection was lost: {first_line(exc)}") from exc
        raise


@contextmanager
def connection_scope(engine: Engine) -> Iterator[Connection]:
    """One short Core transaction, for the hot path; errors as in ``session_scope``."""
    with _unavailable_as_store_errors(engine), engine.begin() as connection:
        yield connection


@contextmanager
def session_scope(engine: Engine) -> Iterator[Session]:
    """One short transaction: commit on success, roll back on any error.

    A lost or refused database connection surfaces as ``StoreUnavailable``,
    which callers treat as "try again later", never as bad input.
    """
    factory = _FACTORIES.get(id(engine))
    if factory is None:
        factory = _FACTORIES[id(engine)] = sessionmaker(engine, expire_on_commit=False)
    with _unavailable_as_store_errors(engine), factory() as session, session.begin():
        yield session


# The revision this code needs: the newest file in migrations/versions
# (tests/unit/test_migrations.py checks that it is Alembic's head). Knowing it
# without Alembic keeps every command, worker and API start from importing
# Alembic and reading the migration scripts (about a tenth of a command's
# start-up); Alembic is imported only to migrate.
HEAD_REVISION = "0005"
# Alembic's bookkeeping table (its default name, which env.py keeps).
VERSION_TABLE = "alembic_version"


def _alembic_config(engine: Engine | None) -> Any:
    # Imported here: only migrations need Alembic (see HEAD_REVISION).
    from alembic.config import Config  # noqa: PLC0415

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["engine"] = engine
    return config


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Create or migrate the schema to ``revision``."""
    from alembic import command  # noqa: PLC0415 - see HEAD_REVISION

    try:
        command.upgrade(_alembic_config(engine), revision)
    except OperationalError as exc:
        raise DispatcherError(
            f"cannot migrate {redact(str(engine.url))}: {first_line(exc)}; check "
            "DISPATCHER_DATABASE_URL and that the database server is running"
        ) from None
    _SCHEMA_CHECKED.discard(str(engine.url))


def downgrade(engine: Engine, revision: str) -> None:
    from alembic import command  # noqa: PLC0415 - see HEAD_REVISION

    command.downgrade(_alembic_config(engine), revision)


def head_revision() -> str:
    return HEAD_REVISION


def current_revision(engine: Engine) -> str | None:
    """The schema's revision as Alembic recorded it; None for a database without one."""
    with engine.connect() as connection:
        if not inspect(connection).has_table(VERSION_TABLE):
            return None
        rows = connection.execute(text("SELECT version_num FROM alembic_version")).scalars()
        versions = list(rows)
    # One row on a linear history; Alembic leaves the table empty after a
    # downgrade to base.
    return versions[0] if len(versions) == 1 else None


def require_schema(engine: Engine) -> None:
    """Fail with a one-line fix unless the schema is at this code's revision."""
    key = str(engine.url)
    if key in _SCHEMA_CHECKED:
        return
    try:
        current = current_revision(engine)
    except SQLAlchemyError as exc:
        raise DispatcherError(
            f"cannot reach the database {redact(key)}: {first_line(exc)}; check "
            "DISPATCHER_DATABASE_URL and that the database server is running"
        ) from None
    head = head_revision()
    if current != head:
        state = "has no schema yet" if current is None else f"is at schema {current}"
        raise SchemaNotReady(
            f"the database {redact(key)} {state}, this version needs {head}; "
            "run: dispatcher db upgrade"
        )
    _SCHEMA_CHECKED.add(key)


def table_names(engine: Engine) -> list[str]:
    return sorted(inspect(engine).get_table_names())


def ping(engine: Engine) -> None:
    with engine.connect() as connection:
        connection.execute(text("SELECT 1"))


def first_line(exc: BaseException) -> str:
    message = str(getattr(exc, "orig", None) or exc)
    return message.strip().splitlines()[0] if message.strip() else type(exc).__name__
