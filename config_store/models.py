"""SQLAlchemy models of the configuration store, and the one metadata of every table.

The delivery record (``dispatcher.delivery.models``) and the access tables
(``dispatcher.admin.models``) declare their tables on the same ``Base``, so
that one Alembic history (``config_store/migrations``) covers the schema.

Settings versions are immutable rows: a save inserts a new version and moves
the group's pointer, so history and rollback need no copies of old states.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    ForeignKey,
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
    # Stored as typed; unique, and looked up, regardless of case (code_folded,
    # ``dispatcher.domain.fields.fold_group_code``): DEMO, Demo and demo are one group.
    code: Mapped[str] = mapped_column(String(64), unique=True)
    code_folded: Mapped[str] = mapped_column(String(64), unique=True)
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
