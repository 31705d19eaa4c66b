"""SQLAlchemy models of the configuration store.

Settings versions are immutable rows: a save inserts a new version and moves
the group's pointer, so history and rollback need no copies of old states.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

# Explicit constraint names keep Alembic migrations identical on SQLite and
# PostgreSQL and let later migrations refer to constraints by name.
NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utcnow() -> datetime:
    return datetime.now(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class CustomerGroup(Base):
    """A customer group set up for the portal."""

    __tablename__ = "customer_groups"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    code: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    current_version_id: Mapped[int | None] = mapped_column(
        ForeignKey("settings_versions.id", use_alter=True, ondelete="SET NULL"), nullable=True
    )

    current_version: Mapped[SettingsVersion | None] = relationship(
        foreign_keys=[current_version_id], post_update=True
    )


class SettingsVersion(Base):
    """One saved state of a group's "Portal e-mails" tab; never updated."""

    __tablename__ = "settings_versions"
    __table_args__ = (UniqueConstraint("group_id", "number"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    group_id: Mapped[int] = mapped_column(
        ForeignKey("customer_groups.id", ondelete="CASCADE"), index=True
    )
    number: Mapped[int] = mapped_column(Integer)
    actor: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    changed_fields: Mapped[list[str]] = mapped_column(JSON, default=list)
    # For a rollback, the version whose content this one restores.
    restored_from: Mapped[int | None] = mapped_column(Integer, nullable=True)

    access_requests_to: Mapped[str] = mapped_column(String(254))
    send_from: Mapped[str] = mapped_column(String(500))
    default_locale: Mapped[str | None] = mapped_column(String(35), nullable=True)
    # Checkboxes; NULL means the document left the box out (treated as off).
    send_to_customers_not_self_initiated: Mapped[bool | None] = mapped_column(Boolean)
    notify_new_main_contact: Mapped[bool | None] = mapped_column(Boolean)
    notify_old_main_contact: Mapped[bool | None] = mapped_column(Boolean)

    texts: Mapped[list[SettingsText]] = relationship(
        back_populates="version", order_by="SettingsText.id", cascade="all, delete-orphan"
    )
    group: Mapped[CustomerGroup] = relationship(foreign_keys=[group_id])


class SettingsText(Base):
    """A section's subject and body in one locale ('' is the group's base texts)."""

    __tablename__ = "settings_texts"
    __table_args__ = (UniqueConstraint("version_id", "locale", "section"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    version_id: Mapped[int] = mapped_column(
        ForeignKey("settings_versions.id", ondelete="CASCADE"), index=True
    )
    locale: Mapped[str] = mapped_column(String(35))
    section: Mapped[str] = mapped_column(String(64))
    subject: Mapped[str | None] = mapped_column(Text)
    body: Mapped[str | None] = mapped_column(Text)

    version: Mapped[SettingsVersion] = relationship(back_populates="texts")


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
        UniqueConstraint("event_id", "kind", "recipient"),
        Index("ix_deliveries_status_due", "status", "next_attempt_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    event_pk: Mapped[int] = mapped_column(ForeignKey("events.id", ondelete="CASCADE"), index=True)
    event_id: Mapped[str] = mapped_column(String(128))
    kind: Mapped[str] = mapped_column(String(40))
    recipient: Mapped[str] = mapped_column(String(254))
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

    event: Mapped[EventRecord] = relationship(back_populates="deliveries")


class RejectedMessage(Base):
    """A task message that was not a valid event: kept with the reason, never sent."""

    __tablename__ = "rejected_messages"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    received_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    event_id: Mapped[str | None] = mapped_column(String(128))
    reason: Mapped[str] = mapped_column(Text)
    payload: Mapped[str] = mapped_column(Text)


class ApiToken(Base):
    """A bearer token of the admin API; only its SHA-256 hash is kept, never the token."""

    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    # Names stay unique even after revocation, so that an actor in the audit
    # log and the settings history always names one token.
    name: Mapped[str] = mapped_column(String(100), unique=True)
    scope: Mapped[str] = mapped_column(String(16))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class AuditEntry(Base):
    """One change made through the API, the web UI or the token commands, with its diff."""

    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), default=utcnow, index=True
    )
    actor: Mapped[str] = mapped_column(String(200))
    action: Mapped[str] = mapped_column(String(64))
    target: Mapped[str] = mapped_column(String(200), index=True)
    diff: Mapped[Any] = mapped_column(JSON, nullable=True)
