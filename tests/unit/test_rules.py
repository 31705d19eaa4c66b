"""CONTRACT §3 as pure code: every event type, every checkbox combination."""

from __future__ import annotations

import itertools
from typing import Any

import pytest

from config_store.document import effective_settings, validate_document
from dispatcher.domain.events import parse_event
from dispatcher.domain.kinds import EventType
from dispatcher.domain.rules import plan
from dispatcher.domain.samples import sample_event
from tests.support.documents import addresses_only

BOXES = list(itertools.product([True, False, None], repeat=3))


def settings(customer: bool | None, new: bool | None, old: bool | None) -> Any:
    document: dict[str, Any] = addresses_only()
    for section, key, value in (
        ("customer_access_request", "send_to_customers_not_self_initiated", customer),
        ("notify_new_main_contact", "send_email", new),
        ("notify_old_main_contact", "send_email", old),
    ):
        if value is not None:
            document[section] = {key: value}
    return effective_settings(validate_document(document), "G", "Group", 1)


def planned(
    event_type: EventType, boxes: tuple[bool | None, ...], **fields: Any
) -> list[tuple[str, str]]:
    raw = sample_event(event_type)
    raw.update(fields)
    return [(p.kind.name, p.recipient.email) for p in plan(parse_event(raw), settings(*boxes))]


@pytest.mark.parametrize("boxes", BOXES)
@pytest.mark.parametrize("self_initiated", [True, False])
def test_access_requested(boxes: tuple[bool | None, ...], self_initiated: bool) -> None:
    result = planned(EventType.ACCESS_REQUESTED, boxes, self_initiated=self_initiated)
    expected = [("access_request.internal", "portal-access@example.com")]
    if not self_initiated and boxes[0] is True:
        expected.append(("access_request.customer", "anna.schmidt@example.com"))
    assert result == expected


@pytest.mark.parametrize("boxes", BOXES)
def test_main_contact_changed(boxes: tuple[bool | None, ...]) -> None:
    expected = []
    if boxes[1] is True:
        expected.append(("main_contact.new", "anna.schmidt@example.com"))
    if boxes[2] is True:
        expected.append(("main_contact.old", "ben.weber@example.com"))
    assert planned(EventType.MAIN_CONTACT_CHANGED, boxes) == expected


@pytest.mark.parametrize("boxes", BOXES)
@pytest.mark.parametrize(
    ("event_type", "kind"),
    [
        (EventType.CUSTOMER_VALIDATED, "validation.new"),
        (EventType.USERNAME_FORGOTTEN, "username.forgotten"),
        (EventType.PASSWORD_RESET, "password.reset"),
    ],
)
def test_unconditional_kinds_ignore_the_checkboxes(
    boxes: tuple[bool | None, ...], event_type: EventType, kind: str
) -> None:
    assert planned(event_type, boxes) == [(kind, "anna.schmidt@example.com")]
