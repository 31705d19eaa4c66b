"""Alembic migrations: they build exactly the models' schema, both ways."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine

from config_store.database import (
    HEAD_REVISION,
    _alembic_config,
    current_revision,
    downgrade,
    head_revision,
    make_engine,
    require_schema,
    table_names,
    upgrade,
)
from config_store.models import Base
from dispatcher.errors import SchemaNotReady
from tests.conftest import new_postgres_schema


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def empty_engine(request: pytest.FixtureRequest, tmp_path) -> Iterator[Engine]:  # type: ignore[no-untyped-def]
    if request.param == "sqlite":
        engine = make_engine(f"sqlite:///{tmp_path / 'fresh.db'}")
        yield engine
        engine.dispose()
        return
    url, drop = new_postgres_schema("m")
    engine = make_engine(url)
    yield engine
    engine.dispose()
    drop()


def test_upgrade_builds_the_models_schema_and_downgrade_removes_it(empty_engine: Engine) -> None:
    with pytest.raises(SchemaNotReady, match=r"has no schema yet.*run: dispatcher db upgrade"):
        require_schema(empty_engine)
    upgrade(empty_engine)
    assert current_revision(empty_engine) == head_revision()
    require_schema(empty_engine)
    with empty_engine.connect() as connection:
        differences = compare_metadata(MigrationContext.configure(connection), Base.metadata)
    assert differences == []
    downgrade(empty_engine, "base")
    assert [t for t in table_names(empty_engine) if t != "alembic_version"] == []
    upgrade(empty_engine)
    assert set(Base.metadata.tables) <= set(table_names(empty_engine))


def test_upgrade_twice_is_harmless(empty_engine: Engine) -> None:
    upgrade(empty_engine)
    upgrade(empty_engine)
    assert current_revision(empty_engine) == head_revision()


def test_the_revision_the_code_needs_is_alembics_head() -> None:
    """HEAD_REVISION spares every start Alembic; it must name the newest migration."""
    script = ScriptDirectory.from_config(_alembic_config(None))
    assert script.get_current_head() == HEAD_REVISION, (
        "a migration was added: set config_store.database.HEAD_REVISION to its revision"
    )


def test_the_current_revision_is_read_as_alembic_reads_it(empty_engine: Engine) -> None:
    assert current_revision(empty_engine) is None
    upgrade(empty_engine, "0003")
    with empty_engine.connect() as connection:
        assert MigrationContext.configure(connection).get_current_revision() == "0003"
    assert current_revision(empty_engine) == "0003"
    downgrade(empty_engine, "base")
    assert current_revision(empty_engine) is None
