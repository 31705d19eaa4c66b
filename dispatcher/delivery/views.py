"""What the delivery record takes and returns: plain dataclasses, no SQL."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any

from dispatcher.domain.statuses import DeliveryStatus


@dataclass(frozen=True)
class DeliveryView:
    """One e-mail of one event to one recipient, as recorded: the one definition of its fields.

    The command line's ``--json`` and the HTTP API show exactly these fields
    (``delivery_document``); the API's schema is this class.
    """

    id: int
    event_id: str
    kind: str
    recipient: str
    recipient_name: str | None
    recipient_locale: str | None
    group: str
    lane: str
    settings_version: int
    status: DeliveryStatus
    attempts: int
    last_code: int | None
    last_text: str | None
    message_id: str
    created_at: datetime
    updated_at: datetime
    next_attempt_at: datetime | None
    sent_at: datetime | None
    uncertain: bool
    test: bool
    resend_of: int | None = None
    ignore_suppression: bool = False
    relay: str | None = None
    bounced_at: datetime | None = None
    bounce_status: str | None = None
    bounce_text: str | None = None
    feedback: str | None = None
    feedback_at: datetime | None = None

    @property
    def smtp_code(self) -> int | None:
        """The relay's last reply code (CONTRACT §8 names it so; stored as ``last_code``)."""
        return self.last_code

    @property
    def smtp_text(self) -> str | None:
        return self.last_text


@dataclass(frozen=True)
class EventView:
    event_id: str
    type: str
    customer_group: str
    lane: str
    received_at: datetime
    outcome: str
    reason: str | None
    payload: Mapping[str, Any]


@dataclass(frozen=True)
class RejectedView:
    id: int
    received_at: datetime
    event_id: str | None
    reason: str
    payload: str


@dataclass(frozen=True)
class NewDelivery:
    """A planned e-mail, ready to be recorded."""

    kind: str
    recipient: str
    recipient_name: str | None
    recipient_locale: str | None
    message_id: str
    lane: str


@dataclass(frozen=True)
class Claimed:
    """A delivery this worker now owns, with the event it renders from.

    ``suppressed`` is the suppression list's reason for its address, read in
    the same transaction that claimed it (None: not suppressed).
    """

    delivery: DeliveryView
    payload: Mapping[str, Any]
    suppressed: str | None = None


@dataclass(frozen=True)
class AcceptRequest:
    """One event to record with the deliveries planned for it."""

    payload: Mapping[str, Any]
    lane: str
    planned: Sequence[NewDelivery]
    settings_version: int
    test: bool = False


@dataclass(frozen=True)
class Accepted:
    """What recording an event did: all its deliveries, and those claimed for sending."""

    deliveries: tuple[DeliveryView, ...]
    claimed: tuple[Claimed, ...]
    new: bool


@dataclass(frozen=True)
class AttemptResult:
    """What one attempt did; applied to the record in one batch."""

    delivery_id: int
    status: DeliveryStatus
    code: int | None = None
    text: str | None = None
    next_attempt_at: datetime | None = None
    sent_at: datetime | None = None
    uncertain: bool = False
    # False when the attempt was only deferred (a rate limit), not tried.
    counts: bool = True
    # The relay that gave the reply (DISPATCHER_RELAYS_FILE's name).
    relay: str | None = None


@dataclass(frozen=True)
class DeliveryFilter:
    event_id: str | None = None
    group: str | None = None
    status: str | None = None
    kind: str | None = None
    recipient: str | None = None
    limit: int = 100
    offset: int = 0


def delivery_document(view: DeliveryView) -> dict[str, Any]:
    """A delivery as JSON data: every field of ``DeliveryView``, times in ISO 8601.

    ``smtp_code`` and ``smtp_text`` repeat ``last_code`` and ``last_text``
    under the names of CONTRACT §8 and the webhooks.
    """
    document: dict[str, Any] = {}
    for item in fields(DeliveryView):
        value = getattr(view, item.name)
        document[item.name] = value.isoformat() if isinstance(value, datetime) else value
    document["smtp_code"] = view.last_code
    document["smtp_text"] = view.last_text
    return document
