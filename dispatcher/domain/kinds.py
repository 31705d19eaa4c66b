"""The seven e-mail kinds of CONTRACT §3 and how each ties to settings and events."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from dispatcher.errors import DispatcherError


class EventType(StrEnum):
    ACCESS_REQUESTED = "access.requested"
    CUSTOMER_VALIDATED = "customer.validated"
    MAIN_CONTACT_CHANGED = "main_contact.changed"
    USERNAME_FORGOTTEN = "username.forgotten"
    PASSWORD_RESET = "password.reset"  # noqa: S105 - an event name


class Lane(StrEnum):
    """Queues: interactive mail must never wait behind a batch."""

    INTERACTIVE = "interactive"
    BULK = "bulk"


@dataclass(frozen=True)
class Kind:
    """One e-mail kind: where its texts live and whom it goes to."""

    name: str
    event_type: EventType
    # The settings section holding the subject and body, or None when only the
    # built-in texts apply (the internal access-request notice has no section).
    section: str | None
    # The event field naming the recipient contact, or None for the group's
    # internal access-request address.
    recipient_field: str | None
    # The checkbox in the section that switches this e-mail on, if any.
    checkbox: str | None
    lane: Lane
    label_de: str
    label_en: str


KINDS: tuple[Kind, ...] = (
    Kind(
        "access_request.internal",
        EventType.ACCESS_REQUESTED,
        None,
        None,
        None,
        Lane.BULK,
        "Zugriffsanforderung (intern)",
        "Access request (internal)",
    ),
    Kind(
        "access_request.customer",
        EventType.ACCESS_REQUESTED,
        "customer_access_request",
        "contact",
        "send_to_customers_not_self_initiated",
        Lane.BULK,
        "Kundenzugriffsanforderung",
        "Customer access request",
    ),
    Kind(
        "validation.new",
        EventType.CUSTOMER_VALIDATED,
        "new_validation",
        "contact",
        None,
        Lane.BULK,
        "Bestätigung der Kundenvalidierung",
        "Customer validation confirmation",
    ),
    Kind(
        "main_contact.new",
        EventType.MAIN_CONTACT_CHANGED,
        "notify_new_main_contact",
        "new_contact",
        "send_email",
        Lane.BULK,
        "Neuen Hauptkontakt benachrichtigen",
        "Notify new main contact",
    ),
    Kind(
        "main_contact.old",
        EventType.MAIN_CONTACT_CHANGED,
        "notify_old_main_contact",
        "old_contact",
        "send_email",
        Lane.BULK,
        "Alten Hauptkontakt benachrichtigen",
        "Notify old main contact",
    ),
    Kind(
        "username.forgotten",
        EventType.USERNAME_FORGOTTEN,
        "forgotten_username",
        "contact",
        None,
        Lane.INTERACTIVE,
        "Benutzernamen vergessen",
        "Forgotten user name",
    ),
    Kind(
        "password.reset",
        EventType.PASSWORD_RESET,
        "password_reset",
        "contact",
        None,
        Lane.INTERACTIVE,
        "Passwort zurücksetzen",
        "Password reset",
    ),
)

KIND_BY_NAME: dict[str, Kind] = {kind.name: kind for kind in KINDS}
KIND_BY_SECTION: dict[str, Kind] = {kind.section: kind for kind in KINDS if kind.section}
# Sections in the order of the help page; the settings document and the UI follow it.
SECTIONS: tuple[str, ...] = tuple(kind.section for kind in KINDS if kind.section)


def lookup_kind(name: str) -> Kind:
    """Find a kind by its name or by its settings section; raise a helpful error."""

    kind = KIND_BY_NAME.get(name) or KIND_BY_SECTION.get(name)
    if kind is None:
        known = ", ".join(KIND_BY_NAME)
        raise DispatcherError(f"unknown e-mail kind {name!r}; use one of: {known}")
    return kind


def kinds_for(event_type: EventType) -> tuple[Kind, ...]:
    return tuple(kind for kind in KINDS if kind.event_type is event_type)


def lane_for_event(event_type: str) -> Lane:
    """All kinds of one event type share a lane, so the event travels on it."""
    return kinds_for(EventType(event_type))[0].lane


MAINTENANCE_QUEUE = "dispatcher.maintenance"


def queue_for(lane: Lane | str) -> str:
    """The Redis queue of a lane (CONTRACT §4: documented for other clients)."""
    return f"dispatcher.{Lane(lane).value}"


# Webhooks to the portal backend travel on their own lane, taken last, so that
# they never delay an e-mail.
WEBHOOKS_QUEUE = "dispatcher.webhooks"
ALL_QUEUES = (
    queue_for(Lane.INTERACTIVE),
    queue_for(Lane.BULK),
    MAINTENANCE_QUEUE,
    WEBHOOKS_QUEUE,
)
