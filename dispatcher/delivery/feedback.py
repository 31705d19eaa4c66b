"""What the mail world says after the relay took an e-mail: bounces and auto-replies.

A message to a delivery's signed return path (``domain/return_path.py``) is
parsed (``mail/bounces.py``) and recorded on that delivery, in one
transaction with what follows from it:

- hard bounce: the delivery becomes ``bounced`` with the status code and the
  diagnostic, its address goes on the suppression list (unless the refusal
  was one of policy, 5.7.x), and a ``delivery.bounced`` webhook is written; a
  second bounce changes nothing;
- soft bounce (the remote server keeps trying): noted on the delivery, with a
  ``delivery.delayed`` webhook; nothing is suppressed;
- auto-reply, or a message that says nothing readable: only noted.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import Engine, insert, select
from sqlalchemy.orm import Session

from config_store.database import session_scope
from dispatcher.delivery.models import Delivery, WebhookMessage
from dispatcher.delivery.record import clip, view_of
from dispatcher.delivery.suppressions import insert_suppression
from dispatcher.delivery.webhooks import outcome_rows
from dispatcher.domain.statuses import BounceKind, DeliveryStatus, WebhookType
from dispatcher.mail.bounces import Bounce, BouncedRecipient

log = logging.getLogger("dispatcher.feedback")

BOUNCE_SERVER = "bounce server"


@dataclass(frozen=True)
class FeedbackOutcome:
    """What one message did to one delivery."""

    delivery_id: int
    kind: BounceKind
    # recorded | already bounced | unknown delivery | noted
    result: str
    suppressed: str | None = None
    webhooks: int = 0


def _report_for(bounce: Bounce, recipient: str) -> BouncedRecipient | None:
    """The part of a bounce about ``recipient``, or its first part (VERP names the delivery)."""
    for item in bounce.recipients:
        if item.address and item.address.lower() == recipient.lower():
            return item
    return bounce.recipients[0] if bounce.recipients else None


def _kind(bounce: Bounce, report: BouncedRecipient | None) -> BounceKind:
    value = report.classification if report is not None else bounce.classification
    return BounceKind(str(value))


def _describe(report: BouncedRecipient | None, kind: BounceKind) -> tuple[str | None, str]:
    """The status code and a one-line text for the record and the webhook."""
    if report is None:
        return None, {
            BounceKind.AUTO_REPLY: "an automatic reply (out of office or similar)",
            BounceKind.UNKNOWN: "a message came back that is not a readable bounce",
        }.get(kind, "the recipient's server refused the e-mail")
    parts = [p for p in (report.status, report.diagnostic) if p]
    text = " ".join(parts) if parts else "the recipient's server refused the e-mail"
    if report.remote_mta:
        text = f"{text} (reported by {report.remote_mta})"
    return report.status, text


class FeedbackRecorder:
    """Records bounces and auto-replies on the deliveries they are about."""

    def __init__(self, engine: Engine, webhook_targets: Sequence[str] = ()) -> None:
        self.engine = engine
        self.webhook_targets = tuple(webhook_targets)

    def record(
        self, delivery_ids: Sequence[int], bounce: Bounce, now: datetime | None = None
    ) -> list[FeedbackOutcome]:
        """Record ``bounce`` on each delivery it was addressed to (usually one)."""
        when = now or datetime.now(UTC)
        return [self._record_one(delivery_id, bounce, when) for delivery_id in delivery_ids]

    def _record_one(self, delivery_id: int, bounce: Bounce, now: datetime) -> FeedbackOutcome:
        with session_scope(self.engine) as session:
            row = session.get(Delivery, delivery_id, with_for_update=True)
            if row is None:
                # A signed token for a delivery purged since: nothing to mark.
                log.info("bounce for delivery %s, which the record no longer holds", delivery_id)
                return FeedbackOutcome(delivery_id, BounceKind.UNKNOWN, "unknown delivery")
            report = _report_for(bounce, row.recipient)
            kind = _kind(bounce, report)
            code, text = _describe(report, kind)
            if kind is BounceKind.HARD:
                if row.status == DeliveryStatus.BOUNCED:
                    return FeedbackOutcome(delivery_id, kind, "already bounced")
                row.status = DeliveryStatus.BOUNCED.value
                row.bounced_at = now
                row.bounce_status = (code or "5.0.0")[:16]
                row.bounce_text = clip(text)
                row.next_attempt_at = None
                row.claimed_at = None
                row.updated_at = now
                reason = f"hard bounce {row.bounce_status}: {text}"
                # 5.7.x refuses the message or its sender (policy, spam, DMARC),
                # not the address: suppressing it would cut a customer off for
                # a problem on our side. The delivery still shows the bounce.
                added = not row.bounce_status.startswith("5.7.") and insert_suppression(
                    session, row.recipient.lower(), reason, BOUNCE_SERVER, now, delivery_id
                )
                written = self._webhooks(session, row, WebhookType.BOUNCED, code, text, now)
                log.warning(
                    "delivery %s bounced (%s); %s suppressed",
                    delivery_id,
                    row.bounce_status,
                    row.recipient,
                )
                return FeedbackOutcome(
                    delivery_id,
                    kind,
                    "recorded",
                    suppressed=row.recipient.lower() if added else None,
                    webhooks=written,
                )
            label = {
                BounceKind.SOFT: "delayed",
                BounceKind.AUTO_REPLY: "auto-reply",
                BounceKind.UNKNOWN: "unreadable reply",
            }[kind]
            row.feedback = clip(f"{label}: {text}")
            row.feedback_at = now
            written = 0
            if kind is BounceKind.SOFT and row.status != DeliveryStatus.BOUNCED:
                written = self._webhooks(session, row, WebhookType.DELAYED, code, text, now)
            return FeedbackOutcome(delivery_id, kind, "noted", webhooks=written)

    def _webhooks(
        self,
        session: Session,
        row: Delivery,
        event_type: WebhookType,
        code: str | None,
        text: str,
        now: datetime,
    ) -> int:
        if not self.webhook_targets or row.test:
            return 0
        view = view_of(row)
        rows = outcome_rows(
            self.webhook_targets,
            event_type,
            view,
            row.status,
            now,
            code=row.last_code,
            text=row.last_text,
            attempts=row.attempts,
            relay=row.relay,
            extra={"bounce": {"status": code, "diagnostic": text}},
        )
        session.execute(insert(WebhookMessage), [r.values(now) for r in rows])
        return len(rows)


def delivery_exists(engine: Engine, delivery_id: int) -> bool:
    with session_scope(engine) as session:
        return session.scalar(select(Delivery.id).where(Delivery.id == delivery_id)) is not None
