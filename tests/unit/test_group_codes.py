"""Group codes: stored as typed, unique and found regardless of case (migration 0005)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import Engine, text

from config_store.database import current_revision, head_revision, make_engine, upgrade
from config_store.repository import SettingsRepository
from dispatcher.delivery.orchestrator import Dispatcher
from dispatcher.delivery.record import DeliveryRecords
from dispatcher.delivery.views import DeliveryFilter
from dispatcher.domain.kinds import EventType
from dispatcher.domain.samples import sample_event
from dispatcher.errors import DispatcherError, GroupExists, UnknownGroup
from tests.conftest import new_postgres_schema
from tests.support.documents import full
from tests.unit.test_service import CONFIG, Clock, ScriptedTransport


def test_a_code_that_differs_only_in_case_is_the_same_group(
    repository: SettingsRepository,
) -> None:
    repository.add_group("DEMO", "Demo customers")
    for other in ("demo", "Demo", "dEmO"):
        with pytest.raises(GroupExists, match="'DEMO' is already set up"):
            repository.add_group(other, "Another")
    assert [group.code for group in repository.list_groups()] == ["DEMO"]
    # Stored as typed, found in any case.
    assert repository.get_group("demo").code == "DEMO"
    saved = repository.save_settings("Demo", full(), "test")
    assert saved.version.group_code == "DEMO"
    assert [v.group_code for v in repository.history("demo")] == ["DEMO"]
    assert repository.snapshot("demo").group_code == "DEMO"
    assert repository.snapshot("dEmO", max_age=60).group_code == "DEMO"
    assert repository.snapshot_version("demo", 1).group_code == "DEMO"
    assert repository.document("DEMO") == repository.document("demo")
    rolled = repository.rollback("demo", 1, "test")
    assert rolled.version.group_code == "DEMO"
    with pytest.raises(UnknownGroup):
        repository.get_group("demo2")


def test_events_may_name_the_group_in_any_case(engine: Engine) -> None:
    repository = SettingsRepository(engine)
    repository.add_group("RETAIL", "Retail customers")
    repository.save_settings("RETAIL", full(), "test")
    transport = ScriptedTransport()
    service = Dispatcher(
        repository,
        DeliveryRecords(engine),
        transport,
        CONFIG,  # type: ignore[arg-type]
        clock=Clock(),
        jitter=lambda: 1.0,
    )
    for number, code in enumerate(("retail", "Retail", "RETAIL")):
        event = sample_event(EventType.PASSWORD_RESET)
        event.update(event_id=f"e-{number}", customer_group=code)
        assert service.handle_event(event).status == "accepted"
    assert len(transport.sent) == 3
    assert all(row.status == "sent" for row in service.records.deliveries())
    # The record names the group as stored, whatever the event wrote, and a
    # filter finds it in any case; one batch of events says the same.
    batch = []
    for number, code in enumerate(("retail", "rEtAiL")):
        event = sample_event(EventType.PASSWORD_RESET)
        event.update(event_id=f"b-{number}", customer_group=code)
        batch.append(event)
    assert [o.status for o in service.handle_events(batch)] == ["accepted", "accepted"]
    rows = service.records.deliveries()
    assert len(rows) == 5
    assert {row.group for row in rows} == {"RETAIL"}
    for spelled in ("retail", "Retail", "RETAIL"):
        assert len(service.records.deliveries(DeliveryFilter(group=spelled))) == 5
    assert service.records.deliveries(DeliveryFilter(group="retail2")) == []
    with engine.connect() as connection:
        groups = connection.scalars(text("SELECT DISTINCT customer_group FROM events")).all()
    assert groups == ["RETAIL"]


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def fresh_engine(request: pytest.FixtureRequest, tmp_path: Any) -> Iterator[Engine]:
    if request.param == "sqlite":
        engine = make_engine(f"sqlite:///{tmp_path / 'codes.db'}")
        yield engine
        engine.dispose()
        return
    url, drop = new_postgres_schema("c")
    engine = make_engine(url)
    yield engine
    engine.dispose()
    drop()


def _insert_groups(engine: Engine, *codes: str) -> None:
    with engine.begin() as connection:
        for code in codes:
            connection.execute(
                text(
                    "INSERT INTO customer_groups (code, name, created_at) "
                    "VALUES (:code, :name, CURRENT_TIMESTAMP)"
                ),
                {"code": code, "name": f"Group {code}"},
            )


def test_the_migration_refuses_codes_that_collide_and_changes_nothing(
    fresh_engine: Engine,
) -> None:
    upgrade(fresh_engine, "0004")
    _insert_groups(fresh_engine, "DEMO", "Demo", "demo", "RETAIL", "retail", "OTHER")
    with pytest.raises(DispatcherError) as caught:
        upgrade(fresh_engine)
    message = str(caught.value)
    assert "'DEMO' and 'Demo' and 'demo'" in message
    assert "'RETAIL' and 'retail'" in message
    assert "OTHER" not in message
    assert "nothing was changed" in message
    assert "run: dispatcher db upgrade" in message
    assert "\n" not in message
    assert current_revision(fresh_engine) == "0004"
    with fresh_engine.connect() as connection:
        columns = connection.execute(text("SELECT * FROM customer_groups")).keys()
    assert "code_folded" not in columns

    # Renamed as the message says, the upgrade goes through and folds every code.
    with fresh_engine.begin() as connection:
        for old, new in (("Demo", "DEMO-2"), ("demo", "DEMO-3"), ("retail", "RETAIL-2")):
            connection.execute(
                text("UPDATE customer_groups SET code = :new WHERE code = :old"),
                {"new": new, "old": old},
            )
    upgrade(fresh_engine)
    assert current_revision(fresh_engine) == head_revision()
    with fresh_engine.connect() as connection:
        rows = connection.execute(
            text("SELECT code, code_folded FROM customer_groups ORDER BY code")
        ).all()
    assert [tuple(row) for row in rows] == [
        ("DEMO", "demo"),
        ("DEMO-2", "demo-2"),
        ("DEMO-3", "demo-3"),
        ("OTHER", "other"),
        ("RETAIL", "retail"),
        ("RETAIL-2", "retail-2"),
    ]
    repository = SettingsRepository(fresh_engine)
    assert repository.get_group("retail-2").code == "RETAIL-2"
    with pytest.raises(GroupExists):
        repository.add_group("other", "Again")


def test_the_database_itself_refuses_a_second_code_in_another_case(
    fresh_engine: Engine,
) -> None:
    upgrade(fresh_engine)
    SettingsRepository(fresh_engine).add_group("DEMO", "Demo")
    with pytest.raises(Exception, match=r"(?i)unique"), fresh_engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO customer_groups (code, code_folded, name, created_at) "
                "VALUES ('demo', 'demo', 'x', CURRENT_TIMESTAMP)"
            )
        )
