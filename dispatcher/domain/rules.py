"""Which e-mails an event produces (CONTRACT §3); pure, no I/O."""

from __future__ import annotations

from dataclasses import dataclass

from dispatcher.domain.events import AccessRequested, Contact, Event, recipient_of
from dispatcher.domain.group_settings import GroupSettings
from dispatcher.domain.kinds import EventType, Kind, kinds_for


@dataclass(frozen=True)
class PlannedEmail:
    """One e-mail to send: its kind and the contact it goes to."""

    kind: Kind
    recipient: Contact


def plan(event: Event, settings: GroupSettings) -> list[PlannedEmail]:
    """Every e-mail ``event`` produces under ``settings``, in a stable order."""
    planned: list[PlannedEmail] = []
    for kind in kinds_for(EventType(event.type)):
        if not _wanted(kind, event, settings):
            continue
        recipient = recipient_of(event, kind) or Contact(email=settings.access_requests_to)
        planned.append(PlannedEmail(kind, recipient))
    return planned


def _wanted(kind: Kind, event: Event, settings: GroupSettings) -> bool:
    if kind.name == "access_request.customer":
        # Customers who asked for access themselves already know; the
        # checkbox covers those whom someone else registered.
        assert isinstance(event, AccessRequested)
        return not event.self_initiated and settings.is_enabled(kind)
    return settings.is_enabled(kind)
