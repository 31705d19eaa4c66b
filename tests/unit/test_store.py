"""The configuration store on SQLite and PostgreSQL."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import Engine, func, select

from config_store.models import SettingsText, SettingsVersion
from config_store.repository import SettingsRepository, changed_fields
from dispatcher.domain.kinds import KIND_BY_NAME
from dispatcher.errors import (
    DispatcherError,
    GroupExists,
    InvalidDocument,
    NoSettings,
    UnknownGroup,
    UnknownVersion,
    VersionConflict,
)
from tests.support.documents import FULL, addresses_only, full


def count_versions(engine: Engine) -> int:
    with engine.connect() as connection:
        return int(connection.scalar(select(func.count()).select_from(SettingsVersion)) or 0)


def test_groups_add_list_show(repository: SettingsRepository) -> None:
    repository.add_group("RETAIL", "Retail customers")
    repository.add_group("B2B", "Business customers")
    assert [(g.code, g.name, g.current_version) for g in repository.list_groups()] == [
        ("B2B", "Business customers", None),
        ("RETAIL", "Retail customers", None),
    ]
    assert repository.get_group("RETAIL").name == "Retail customers"
    with pytest.raises(GroupExists, match="'RETAIL' is already set up"):
        repository.add_group("RETAIL", "Again")
    with pytest.raises(UnknownGroup, match=r"dispatcher groups add NOPE --name"):
        repository.get_group("NOPE")


@pytest.mark.parametrize(
    ("code", "name", "message"),
    [
        ("bad code", "x", "is not a valid group code"),
        ("-x", "x", "is not a valid group code"),
        ("OK", "", "the group name must not be empty"),
        ("OK", "two\nlines", "the group name must be a single line"),
        ("OK", "x" * 201, "longer than 200 characters"),
    ],
)
def test_bad_groups_are_refused(
    repository: SettingsRepository, code: str, name: str, message: str
) -> None:
    with pytest.raises(DispatcherError, match=message):
        repository.add_group(code, name)
    assert repository.list_groups() == []


def test_save_then_export_gives_back_the_same_document(repository: SettingsRepository) -> None:
    repository.add_group("RETAIL", "Retail customers")
    result = repository.save_settings("RETAIL", full(), "alice")
    assert (result.created, result.version.number, result.version.actor) == (True, 1, "alice")
    assert repository.document("RETAIL") == FULL
    assert repository.get_group("RETAIL").current_version == 1


def test_unknown_group_is_refused_and_nothing_saved(
    repository: SettingsRepository, engine: Engine
) -> None:
    with pytest.raises(UnknownGroup) as caught:
        repository.save_settings("NOPE", full(), "alice")
    assert str(caught.value) == (
        "customer group 'NOPE' is not set up for the portal; add it first with: "
        'dispatcher groups add NOPE --name "..."'
    )
    assert count_versions(engine) == 0


def test_invalid_document_saves_nothing(repository: SettingsRepository, engine: Engine) -> None:
    repository.add_group("RETAIL", "Retail customers")
    repository.save_settings("RETAIL", full(), "alice")
    document = full()
    document["internal_addresses"]["send_from"] = "broken"
    document["password_reset"]["subject"] = "a\nb"
    document["new_validation"]["body"] = "{{ reset_url }}"
    with pytest.raises(InvalidDocument) as caught:
        repository.save_settings("RETAIL", document, "mallory")
    assert [e.path for e in caught.value.errors] == [
        "internal_addresses.send_from",
        "new_validation.body",
        "password_reset.subject",
    ]
    assert count_versions(engine) == 1
    assert repository.document("RETAIL") == FULL


def test_every_save_is_a_new_version_with_changed_fields(repository: SettingsRepository) -> None:
    repository.add_group("RETAIL", "Retail customers")
    repository.save_settings("RETAIL", addresses_only(), "alice")
    document = addresses_only()
    document["password_reset"] = {"subject": "Neu"}
    second = repository.save_settings("RETAIL", document, "bob")
    assert second.version.number == 2
    assert second.version.changed_fields == ("password_reset.subject",)
    unchanged = repository.save_settings("RETAIL", document, "carol")
    assert (unchanged.created, unchanged.version.number) == (False, 2)
    history = repository.history("RETAIL")
    assert [(v.number, v.actor, v.is_current) for v in history] == [
        (2, "bob", True),
        (1, "alice", False),
    ]
    assert history[0].created_at >= history[1].created_at


def test_export_of_an_old_version(repository: SettingsRepository) -> None:
    repository.add_group("RETAIL", "Retail customers")
    repository.save_settings("RETAIL", full(), "alice")
    repository.save_settings("RETAIL", addresses_only(), "bob")
    assert repository.document("RETAIL", 1) == FULL
    assert repository.document("RETAIL", 2) == addresses_only()
    with pytest.raises(UnknownVersion, match="versions run from 1 to 2"):
        repository.document("RETAIL", 3)


def test_rollback_restores_an_earlier_version(repository: SettingsRepository) -> None:
    repository.add_group("RETAIL", "Retail customers")
    repository.save_settings("RETAIL", full(), "alice")
    repository.save_settings("RETAIL", addresses_only(), "bob")
    result = repository.rollback("RETAIL", 1, "carol")
    assert (result.created, result.version.number, result.version.restored_from) == (True, 3, 1)
    assert repository.document("RETAIL") == FULL
    assert repository.snapshot("RETAIL").version == 3
    again = repository.rollback("RETAIL", 1, "carol")
    assert (again.created, again.version.number) == (False, 3)


def test_optimistic_concurrency(repository: SettingsRepository) -> None:
    repository.add_group("RETAIL", "Retail customers")
    repository.save_settings("RETAIL", full(), "alice")
    with pytest.raises(VersionConflict, match="you edited version 0, the current one is 1"):
        repository.save_settings("RETAIL", addresses_only(), "bob", expected_version=0)
    repository.save_settings("RETAIL", addresses_only(), "bob", expected_version=1)


def test_concurrent_saves_get_distinct_numbers(engine: Engine) -> None:
    repository = SettingsRepository(engine)
    repository.add_group("RETAIL", "Retail customers")
    errors: list[BaseException] = []

    def save(index: int) -> None:
        document = addresses_only()
        document["password_reset"] = {"subject": f"Version {index}"}
        try:
            SettingsRepository(engine).save_settings("RETAIL", document, f"user{index}")
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=save, args=(i,)) for i in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert sorted(v.number for v in repository.history("RETAIL")) == [1, 2, 3, 4, 5, 6]


def test_texts_are_stored_per_locale(repository: SettingsRepository, engine: Engine) -> None:
    repository.add_group("RETAIL", "Retail customers")
    repository.save_settings("RETAIL", full(), "alice")
    with engine.connect() as connection:
        rows = connection.execute(
            select(SettingsText.locale, SettingsText.section).order_by(SettingsText.id)
        ).all()
    assert ("en", "password_reset") in rows
    assert ("", "password_reset") in rows
    assert len(rows) == 7


def test_snapshot_is_cached_per_version_and_follows_saves(repository: SettingsRepository) -> None:
    repository.add_group("RETAIL", "Retail customers")
    with pytest.raises(NoSettings, match="dispatcher settings import RETAIL FILE"):
        repository.snapshot("RETAIL")
    repository.save_settings("RETAIL", full(), "alice")
    first = repository.snapshot("RETAIL")
    assert repository.snapshot("RETAIL") is first
    assert first.send_from == "Kundenportal <portal@example.com>"
    assert first.sender.address == "portal@example.com"
    assert first.is_enabled(KIND_BY_NAME["main_contact.new"]) is True
    assert first.is_enabled(KIND_BY_NAME["main_contact.old"]) is False
    repository.save_settings("RETAIL", addresses_only(), "bob")
    second = repository.snapshot("RETAIL")
    assert second is not first
    assert second.version == 2
    assert second.is_enabled(KIND_BY_NAME["main_contact.new"]) is False
    with pytest.raises(UnknownGroup):
        repository.snapshot("NOPE")


def test_a_snapshot_cannot_be_changed(repository: SettingsRepository) -> None:
    repository.add_group("RETAIL", "Retail customers")
    repository.save_settings("RETAIL", full(), "alice")
    snapshot = repository.snapshot("RETAIL")
    with pytest.raises(AttributeError):
        snapshot.send_from = "other@example.com"  # type: ignore[misc]
    with pytest.raises(TypeError):
        snapshot.checkboxes["notify_new_main_contact"] = False  # type: ignore[index]


def test_changed_fields_of_nested_documents() -> None:
    old = {"a": {"b": 1, "c": 2}, "t": {"en": {"x": {"subject": "s"}}}}
    new = {"a": {"b": 1, "c": 3}, "t": {"en": {"x": {"subject": "s", "body": "b"}}}}
    assert changed_fields(old, new) == ["a.c", "t.en.x.body"]
    assert changed_fields(new, new) == []
