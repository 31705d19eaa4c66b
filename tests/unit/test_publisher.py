"""The backend's client: the contract's import, validation before enqueueing."""

from __future__ import annotations

import pytest

import dispatcher.broker.publisher  # noqa: F401 - the import that used to shadow it
from dispatcher import publish
from dispatcher.broker.publisher import argsrepr
from dispatcher.domain.events import validate_all
from dispatcher.domain.kinds import EventType
from dispatcher.domain.samples import sample_event
from dispatcher.errors import InvalidEvent


def test_the_contract_import_is_the_function_even_after_the_module_loaded() -> None:
    assert callable(publish)
    assert publish.__name__ == "publish"


def test_publish_validates_before_enqueueing() -> None:
    event = sample_event(EventType.PASSWORD_RESET)
    del event["reset_url"]
    with pytest.raises(InvalidEvent, match="reset_url: is required"):
        publish(event)


def test_publish_many_enqueues_nothing_if_one_is_invalid() -> None:
    good = sample_event(EventType.PASSWORD_RESET)
    bad = sample_event(EventType.PASSWORD_RESET)
    bad["contact"] = {"email": "nope"}
    with pytest.raises(InvalidEvent) as caught:
        validate_all([good, bad])
    assert [e.path for e in caught.value.errors] == ["[1].contact.email"]


def test_monitoring_sees_event_ids_and_types_not_the_people() -> None:
    one = sample_event(EventType.PASSWORD_RESET)
    one["event_id"] = "reset-1"
    shown = argsrepr(one)
    assert shown == "[reset-1 (password.reset)]"
    assert one["contact"]["email"] not in shown
    many = [{**one, "event_id": f"e{n}"} for n in range(25)]
    assert argsrepr(many) == (
        "[e0 (password.reset), e1 (password.reset), e2 (password.reset), ... 25 events]"
    )
    assert argsrepr(["not an event"]) == "[?]"
