"""The states of a delivery and an event, and the verdicts on an SMTP reply.

String enums: they compare equal to the strings stored in the record and
shown in JSON, so the database and the API keep plain text.
"""

from __future__ import annotations

from enum import StrEnum


class DeliveryStatus(StrEnum):
    """Where one e-mail of one event to one recipient stands."""

    QUEUED = "queued"
    SENDING = "sending"
    SENT = "sent"
    RETRYING = "retrying"
    UNKNOWN = "unknown"
    DEAD = "dead"
    SUPPRESSED = "suppressed"


# Statuses a worker may pick up when due.
WAITING = (DeliveryStatus.QUEUED, DeliveryStatus.RETRYING, DeliveryStatus.UNKNOWN)
# Statuses nothing moves on from (but a replay or a resend).
FINAL = (DeliveryStatus.SENT, DeliveryStatus.DEAD, DeliveryStatus.SUPPRESSED)
STATUSES = tuple(DeliveryStatus)


class EventStatus(StrEnum):
    """What taking one event from the queue came to."""

    ACCEPTED = "accepted"  # e-mails planned and recorded
    DUPLICATE = "duplicate"  # recorded before: nothing new
    FAILED = "failed"  # nothing could be planned (unknown group, no settings); replayable
    REJECTED = "rejected"  # not a valid event at all


class Verdict(StrEnum):
    """What an SMTP failure means for the delivery (``dispatcher.smtp.transport``)."""

    TEMPORARY = "temporary"  # try again later
    PERMANENT = "permanent"  # a dead letter
    UNKNOWN = "unknown"  # handed over, reply lost: it may have arrived (RFC 1047)
