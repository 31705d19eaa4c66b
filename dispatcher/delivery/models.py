"""Tables of the delivery record: events, deliveries, rejected messages, suppressions, webhooks."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    false,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from config_store.models import Base, utcnow


class EventRecord(Base):
    """An event a worker took from the queue: the idempotency key and its outcome."""

    __tablename__ = "events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    event_id: Mapped[str] = mapped_column(String(128), unique=True)
    type: Mapped[str] = mapped_column(String(40))
    customer_group: Mapped[str] = mapped_column(String(64), index=True)
    lane: Mapped[str] = mapped_column(String(16))
    received_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    occurred_at: Mapped[str | None] = mapped_column(String(64))
    # The validated event, kept so that retries and replays render the very
    # same e-mail; the SQL record, not Redis, is the source of truth.
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    # accepted: e-mails planned; failed: nothing could be planned (reason says why).
    outcome: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str | None] = mapped_column(Text)

    deliveries: Mapped[list[Delivery]] = relationship(
        back_populates="event", order_by="Delivery.id", cascade="all, delete-orphan"
    )


class Delivery(Base):
    """One e-mail of one event to one recipient, and what happened to it."""

    __tablename__ = "deliveries"
    __table_args__ = (
        # Each event is delivered once per kind and recipient; a resend is an
        # administrator's explicit second delivery and is exempt.
        Index(
            "uq_deliveries_original",
            "event_id",
            "kind",
            "recipient",
            unique=True,
            sqlite_where=text("resend_of IS NULL"),
            postgresql_where=text("resend_of IS NULL"),
        ),
        Index("ix_deliveries_status_due", "status", "next_attempt_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    event_pk: Mapped[int] = mapped_column(ForeignKey("events.id", ondelete="CASCADE"), index=True)
    event_id: Mapped[str] = mapped_column(String(128))
    kind: Mapped[str] = mapped_column(String(40))
    recipient: Mapped[str] = mapped_column(String(254), index=True)
    recipient_name: Mapped[str | None] = mapped_column(String(200))
    recipient_locale: Mapped[str | None] = mapped_column(String(35))
    group_code: Mapped[str] = mapped_column(String(64), index=True)
    lane: Mapped[str] = mapped_column(String(16))
    settings_version: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(16))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_code: Mapped[int | None] = mapped_column(Integer)
    last_text: Mapped[str | None] = mapped_column(Text)
    message_id: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    next_attempt_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    claimed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # When a sweeper last enqueued a task for it; keeps sweeps from piling up
    # tasks for a delivery whose task is still waiting in a long queue.
    enqueued_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    sent_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # Set when an attempt's outcome could not be known (the connection was
    # lost after the message was handed over): the e-mail may arrive twice.
    uncertain: Mapped[bool] = mapped_column(Boolean, default=False)
    test: Mapped[bool] = mapped_column(Boolean, default=False)
    # A resend: the delivery it sends again, and whether the suppression
    # list was overridden for it (``--force``).
    # A plain number, not a foreign key: purging an old original leaves its
    # newer resends as they are (see migration 0004).
    resend_of: Mapped[int | None] = mapped_column(Integer, index=True)
    ignore_suppression: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    # The relay that took the e-mail (DISPATCHER_RELAYS_FILE's name).
    relay: Mapped[str | None] = mapped_column(String(100))
    # A hard bounce reported later by the recipient's server (RFC 3464).
    bounced_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    bounce_status: Mapped[str | None] = mapped_column(String(16))
    bounce_text: Mapped[str | None] = mapped_column(Text)
    # The last soft bounce or auto-reply: noted, nothing changes for it.
    feedback: Mapped[str | None] = mapped_column(Text)
    feedback_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    event: Mapped[EventRecord] = relationship(back_populates="deliveries")


class RejectedMessage(Base):
    """A task message that was not a valid event: kept with the reason, never sent."""

    __tablename__ = "rejected_messages"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    received_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    event_id: Mapped[str | None] = mapped_column(String(128))
    reason: Mapped[str] = mapped_column(Text)
    payload: Mapped[str] = mapped_column(Text)


class Suppression(Base):
    """An address no e-mail goes to: installation-wide, with why and since when."""

    __tablename__ = "suppressions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    address: Mapped[str] = mapped_column(String(254), unique=True)
    reason: Mapped[str] = mapped_column(Text)
    since: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    # The delivery whose hard bounce put it here; None when added by hand.
    source_delivery_id: Mapped[int | None] = mapped_column(Integer)
    created_by: Mapped[str] = mapped_column(String(200))


class WebhookMessage(Base):
    """One webhook to one endpoint, written with the outcome it reports (the outbox)."""

    __tablename__ = "webhook_outbox"
    __table_args__ = (Index("ix_webhook_outbox_status_due", "status", "next_attempt_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    # The Standard Webhooks message id: the same for every attempt, so that a
    # receiver recognises a message it has seen.
    webhook_id: Mapped[str] = mapped_column(String(64), unique=True)
    endpoint: Mapped[str] = mapped_column(String(2000))
    event_type: Mapped[str] = mapped_column(String(40))
    delivery_id: Mapped[int | None] = mapped_column(Integer, index=True)
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(16))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    next_attempt_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    claimed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    delivered_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_error: Mapped[str | None] = mapped_column(Text)
