"""Shared fixtures: databases on SQLite and PostgreSQL, and service checks.

Tests that need PostgreSQL or Redis skip when the server is not there, unless
CI=true or DISPATCHER_REQUIRE_SERVICES=1, where a missing server fails the run.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

# Every Redis key of this test run carries its own prefix, so that runs and
# the workers they start never see each other's queues. Set before anything
# reads the settings.
os.environ.setdefault("DISPATCHER_BROKER_PREFIX", f"test-{uuid.uuid4().hex[:10]}:")
os.environ.setdefault(
    "DISPATCHER_BROKER_URL",
    os.environ.get("DISPATCHER_TEST_REDIS_URL", "redis://127.0.0.1:6379/0"),
)

import pytest
import redis
from sqlalchemy import Engine, create_engine, text

from config_store.database import make_engine, upgrade
from config_store.models import Base
from config_store.repository import SettingsRepository
from dispatcher.admin import models as _access_tables  # noqa: F401 - their tables join Base
from dispatcher.delivery import models as _record_tables  # noqa: F401

POSTGRES_URL = os.environ.get(
    "DISPATCHER_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
REQUIRE_SERVICES = os.environ.get("CI", "").lower() == "true" or bool(
    os.environ.get("DISPATCHER_REQUIRE_SERVICES")
)


def service_missing(name: str, reason: str) -> None:
    """Skip the test, or fail it where the services are required to be up."""
    message = f"{name} is not reachable: {reason}"
    if REQUIRE_SERVICES:
        pytest.fail(message + " (CI=true: start it, see .ci/run)", pytrace=False)
    pytest.skip(message)


def new_postgres_schema(prefix: str) -> tuple[str, Callable[[], None]]:
    """A fresh, empty schema in the PostgreSQL test database: its URL and how to drop it."""
    admin = create_engine(POSTGRES_URL, connect_args={"connect_timeout": 3}, pool_pre_ping=True)
    schema = f"{prefix}_{uuid.uuid4().hex[:12]}"
    try:
        with admin.begin() as connection:
            connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    except Exception as exc:
        admin.dispose()
        service_missing("PostgreSQL", str(exc).splitlines()[0])

    def drop() -> None:
        with admin.begin() as connection:
            connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()

    separator = "&" if "?" in POSTGRES_URL else "?"
    return f"{POSTGRES_URL}{separator}options=-csearch_path%3D{schema}", drop


@pytest.fixture(scope="session")
def postgres_schema_url() -> Iterator[str]:
    """A fresh schema in the PostgreSQL test database for this test session."""
    url, drop = new_postgres_schema("t")
    yield url
    drop()


@pytest.fixture(scope="session")
def sqlite_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    return f"sqlite:///{tmp_path_factory.mktemp('db') / 'store.db'}"


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest) -> str:
    """The URL of a migrated database, on each backend in turn."""
    if request.param == "sqlite":
        url: str = request.getfixturevalue("sqlite_url")
    else:
        url = request.getfixturevalue("postgres_schema_url")
    return url


_MIGRATED: dict[str, Engine] = {}


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    """A migrated database whose tables are emptied before each test."""
    engine = _MIGRATED.get(database_url)
    if engine is None:
        engine = _MIGRATED[database_url] = make_engine(database_url)
        upgrade(engine)
    with engine.begin() as connection:
        if engine.dialect.name == "postgresql":
            names = ", ".join(f'"{t.name}"' for t in Base.metadata.sorted_tables)
            connection.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
        else:
            connection.execute(text("UPDATE customer_groups SET current_version_id = NULL"))
            for table in reversed(Base.metadata.sorted_tables):
                connection.execute(table.delete())
    return engine


@pytest.fixture
def repository(engine: Engine) -> SettingsRepository:
    return SettingsRepository(engine)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    for engine in _MIGRATED.values():
        engine.dispose()


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty working directory with a private SQLite database for CLI runs."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DISPATCHER_DATABASE_URL", f"sqlite:///{tmp_path / 'cli.db'}")
    return tmp_path


def require_redis() -> None:
    client = redis.Redis.from_url(os.environ["DISPATCHER_BROKER_URL"], socket_timeout=2)
    try:
        client.ping()
    except redis.RedisError as exc:
        service_missing("Redis", str(exc))
    finally:
        client.close()


def fresh_database(kind: str, directory: Path) -> tuple[str, Callable[[], None]]:
    """A new, migrated database of ``kind``; returns its URL and a cleanup callable."""
    if kind == "sqlite":
        url, cleanup = f"sqlite:///{directory / 'pipeline.db'}", (lambda: None)
    else:
        url, cleanup = new_postgres_schema("p")
    engine = make_engine(url)
    upgrade(engine)
    engine.dispose()
    return url, cleanup
