"""Sample events for previews and for the trial renders at save time."""

from __future__ import annotations

import copy
import functools
from types import NoneType, UnionType
from typing import Any, Union, get_args, get_origin

from pydantic import BaseModel

from dispatcher.domain.events import (
    EVENT_MODELS,
    Contact,
    EventBase,
    recipient_of,
    template_context,
)
from dispatcher.domain.kinds import EventType, Kind

SAMPLE_GROUP = ("MUSTER", "Musterfirma Kundenservice")
SAMPLE_INTERNAL_ADDRESS = "portal-zugang@example.com"

_ANNA = {"email": "anna.schmidt@example.com", "name": "Anna Schmidt", "locale": "de-DE"}
_BEN = {"email": "ben.weber@example.com", "name": "Ben Weber", "locale": "de-DE"}
_CUSTOMER = {"id": "K-10042", "name": "Schmidt & Weber GmbH"}

SAMPLE_EVENTS: dict[EventType, dict[str, Any]] = {
    EventType.ACCESS_REQUESTED: {
        "event_id": "sample-access-requested",
        "type": "access.requested",
        "customer_group": SAMPLE_GROUP[0],
        "occurred_at": "2026-11-27T09:30:00+01:00",
        "customer": _CUSTOMER,
        "contact": _ANNA,
        "self_initiated": False,
        "requested_by": _BEN,
        "portal_url": "https://portal.example.com/",
    },
    EventType.CUSTOMER_VALIDATED: {
        "event_id": "sample-customer-validated",
        "type": "customer.validated",
        "customer_group": SAMPLE_GROUP[0],
        "occurred_at": "2026-11-27T09:30:00+01:00",
        "customer": _CUSTOMER,
        "contact": _ANNA,
        "portal_url": "https://portal.example.com/",
    },
    EventType.MAIN_CONTACT_CHANGED: {
        "event_id": "sample-main-contact-changed",
        "type": "main_contact.changed",
        "customer_group": SAMPLE_GROUP[0],
        "occurred_at": "2026-11-27T09:30:00+01:00",
        "customer": _CUSTOMER,
        "new_contact": _ANNA,
        "old_contact": _BEN,
    },
    EventType.USERNAME_FORGOTTEN: {
        "event_id": "sample-username-forgotten",
        "type": "username.forgotten",
        "customer_group": SAMPLE_GROUP[0],
        "occurred_at": "2026-11-27T09:30:00+01:00",
        "contact": _ANNA,
        "username": "anna.schmidt",
    },
    EventType.PASSWORD_RESET: {
        "event_id": "sample-password-reset",
        "type": "password.reset",
        "customer_group": SAMPLE_GROUP[0],
        "occurred_at": "2026-11-27T09:30:00+01:00",
        "contact": _ANNA,
        "reset_url": "https://portal.example.com/reset?token=3f9a1c",
        "expires_at": "2026-11-27T10:30:00+01:00",
        "username": "anna.schmidt",
    },
}


def _is_optional(annotation: Any) -> bool:
    return get_origin(annotation) in (Union, UnionType) and NoneType in get_args(annotation)


def _strip_optional(model: type[BaseModel], data: dict[str, Any]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for name, field in model.model_fields.items():
        if name not in data or _is_optional(field.annotation):
            continue
        value = data[name]
        annotation = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            value = _strip_optional(annotation, value)
        result[name] = value
    return result


def sample_event(event_type: EventType, *, minimal: bool = False) -> dict[str, Any]:
    """A realistic event; ``minimal`` drops every optional field."""
    event = copy.deepcopy(SAMPLE_EVENTS[event_type])
    return _strip_optional(EVENT_MODELS[event_type], event) if minimal else event


def internal_recipient(address: str) -> Contact:
    return Contact(email=address)


def context_for(
    event: EventBase, kind: Kind, group_code: str, group_name: str, internal_address: str
) -> dict[str, Any]:
    """The template context of one e-mail of ``kind`` for ``event``."""
    recipient = recipient_of(event, kind) or internal_recipient(internal_address)
    return template_context(event, recipient, group_code, group_name)


@functools.cache
def sample_contexts(kind: Kind) -> tuple[tuple[str, dict[str, Any]], ...]:
    """Contexts for a trial render: all optional fields, then none of them."""
    model = EVENT_MODELS[kind.event_type]
    result = []
    for label, minimal in (("the sample event", False), ("optional fields left out", True)):
        event = model.model_validate(sample_event(kind.event_type, minimal=minimal))
        result.append((label, context_for(event, kind, *SAMPLE_GROUP, SAMPLE_INTERNAL_ADDRESS)))
    return tuple(result)
