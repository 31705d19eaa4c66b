"""Event parsing: the five types, precise errors with field paths."""

from __future__ import annotations

from typing import Any

import pytest

from dispatcher.domain.events import parse_event
from dispatcher.domain.kinds import EventType
from dispatcher.domain.samples import sample_event
from dispatcher.errors import InvalidEvent


@pytest.mark.parametrize("event_type", list(EventType))
@pytest.mark.parametrize("minimal", [False, True])
def test_samples_of_every_type_parse(event_type: EventType, minimal: bool) -> None:
    event = parse_event(sample_event(event_type, minimal=minimal))
    assert event.type == event_type.value


def reset(**changes: Any) -> dict[str, Any]:
    event = sample_event(EventType.PASSWORD_RESET)
    event.update(changes)
    return {k: v for k, v in event.items() if v is not ...}


CASES = [
    ([], "", "an event must be a JSON object, not a list"),
    (
        {"event_id": "x"},
        "type",
        "is required; use one of access.requested, customer.validated, "
        "main_contact.changed, username.forgotten, password.reset",
    ),
    (
        reset(type="password.rest"),
        "type",
        "unknown event type 'password.rest'; did you mean 'password.reset'?",
    ),
    (reset(event_id=""), "event_id", "must not be empty"),
    (reset(event_id="x" * 129), "event_id", "is too long; use at most 128 characters"),
    (reset(event_id=...), "event_id", "is required; add it"),
    (
        reset(customer_group="bad group"),
        "customer_group",
        "'bad group' is not a valid group code; "
        "use 1-64 letters, digits, '_', '.' or '-', starting with a letter or digit",
    ),
    (
        reset(reset_url="javascript:alert(1)"),
        "reset_url",
        "'javascript:alert(1)' is not an http(s) URL; write it as https://host/path",
    ),
    (reset(reset_url=...), "reset_url", "is required; add it"),
    (
        reset(expires_at="tomorrow"),
        "expires_at",
        "'tomorrow' is not an RFC 3339 timestamp; write it as 2026-11-27T14:30:00Z",
    ),
    (
        reset(expires_at="2026-11-27T14:30:00"),
        "expires_at",
        "'2026-11-27T14:30:00' has no time zone; add one, e.g. Z or +01:00",
    ),
    (
        reset(contact={"email": "a@example.com", "nmae": "A"}),
        "contact.nmae",
        "unknown key 'nmae' in contact; did you mean 'name'?",
    ),
    (
        reset(contact={"email": "a@example.com", "name": "A\r\nBcc: b@example.com"}),
        "contact.name",
        "must be a single line; remove the line break",
    ),
    (
        reset(contact={"email": "a@example.com", "locale": "klingon!"}),
        "contact.locale",
        "'klingon!' is not a valid language tag; use one such as de, en or de-CH",
    ),
    (
        reset(contact={"email": "not-an-address"}),
        "contact.email",
        "is not a valid e-mail address "
        "(An email address must have an @-sign); write it as name@example.com",
    ),
    (
        reset(reset_link="https://x.example.com"),
        "reset_link",
        "unknown key 'reset_link' in the event; did you mean 'reset_url'?",
    ),
    (reset(username=5), "username", "must be text, not the number 5"),
]


@pytest.mark.parametrize(("raw", "path", "message"), CASES)
def test_bad_events_name_field_and_fix(raw: object, path: str, message: str) -> None:
    with pytest.raises(InvalidEvent) as caught:
        parse_event(raw)
    assert [(e.path, e.message) for e in caught.value.errors] == [(path, message)]


def test_access_request_needs_a_boolean_self_initiated() -> None:
    event = sample_event(EventType.ACCESS_REQUESTED)
    event["self_initiated"] = "false"
    with pytest.raises(InvalidEvent) as caught:
        parse_event(event)
    assert str(caught.value) == (
        "invalid event 'sample-access-requested': self_initiated: must be true or false, "
        "not the text 'false'"
    )
