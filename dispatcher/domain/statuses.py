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
    # Taken by the relay, then refused for good by the recipient's server (a hard bounce).
    BOUNCED = "bounced"


# Statuses a worker may pick up when due.
WAITING = (DeliveryStatus.QUEUED, DeliveryStatus.RETRYING, DeliveryStatus.UNKNOWN)
# Statuses nothing moves on from (but a replay or a resend).
FINAL = (
    DeliveryStatus.SENT,
    DeliveryStatus.DEAD,
    DeliveryStatus.SUPPRESSED,
    DeliveryStatus.BOUNCED,
)
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


class BounceKind(StrEnum):
    """What a message to the bounce address says about a delivery (RFC 3464, RFC 3834)."""

    HARD = "hard"  # permanent: the address is dead; suppressed from now on
    SOFT = "soft"  # delayed: the remote server keeps trying; only noted
    AUTO_REPLY = "auto_reply"  # out of office and the like; only noted
    UNKNOWN = "unknown"  # not a bounce we can read; only noted


class WebhookType(StrEnum):
    """The outcomes the portal backend hears of (CONTRACT §8)."""

    SENT = "delivery.sent"
    BOUNCED = "delivery.bounced"
    DELAYED = "delivery.delayed"
    DEAD = "delivery.dead"
    SUPPRESSED = "delivery.suppressed"


# The webhook a delivery's new status is reported with; other statuses are none.
WEBHOOK_FOR_STATUS = {
    DeliveryStatus.SENT: WebhookType.SENT,
    DeliveryStatus.BOUNCED: WebhookType.BOUNCED,
    DeliveryStatus.DEAD: WebhookType.DEAD,
    DeliveryStatus.SUPPRESSED: WebhookType.SUPPRESSED,
}


class WebhookStatus(StrEnum):
    """Where one webhook message stands in the outbox."""

    PENDING = "pending"  # waiting for its first or next attempt
    DELIVERED = "delivered"  # the receiver answered 2xx
    FAILED = "failed"  # no 2xx within the retry period; replayable
