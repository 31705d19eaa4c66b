"""mail feedback: bounces, suppressions, the webhook outbox, resends and relays

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-04

A resend is a second delivery of the same (event_id, kind, recipient), so the
uniqueness that makes every event deliver once now holds for original
deliveries only (a partial unique index, on SQLite and PostgreSQL alike).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

ORIGINALS_ONLY = sa.text("resend_of IS NULL")


def upgrade() -> None:
    with op.batch_alter_table("deliveries", schema=None) as batch_op:
        batch_op.add_column(sa.Column("resend_of", sa.Integer(), nullable=True))
        batch_op.add_column(
            sa.Column("ignore_suppression", sa.Boolean(), nullable=False, server_default=sa.false())
        )
        batch_op.add_column(sa.Column("relay", sa.String(length=100), nullable=True))
        batch_op.add_column(sa.Column("bounced_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("bounce_status", sa.String(length=16), nullable=True))
        batch_op.add_column(sa.Column("bounce_text", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("feedback", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("feedback_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.drop_constraint("uq_deliveries_event_id_kind_recipient", type_="unique")
        batch_op.create_index(batch_op.f("ix_deliveries_resend_of"), ["resend_of"], unique=False)
        batch_op.create_index(batch_op.f("ix_deliveries_recipient"), ["recipient"], unique=False)
    op.create_index(
        "uq_deliveries_original",
        "deliveries",
        ["event_id", "kind", "recipient"],
        unique=True,
        sqlite_where=ORIGINALS_ONLY,
        postgresql_where=ORIGINALS_ONLY,
    )

    op.create_table(
        "suppressions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("address", sa.String(length=254), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("since", sa.DateTime(timezone=True), nullable=False),
        sa.Column("source_delivery_id", sa.Integer(), nullable=True),
        sa.Column("created_by", sa.String(length=200), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_suppressions")),
        sa.UniqueConstraint("address", name=op.f("uq_suppressions_address")),
    )

    op.create_table(
        "webhook_outbox",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("webhook_id", sa.String(length=64), nullable=False),
        sa.Column("endpoint", sa.String(length=2000), nullable=False),
        sa.Column("event_type", sa.String(length=40), nullable=False),
        sa.Column("delivery_id", sa.Integer(), nullable=True),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("claimed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("delivered_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_webhook_outbox")),
        sa.UniqueConstraint("webhook_id", name=op.f("uq_webhook_outbox_webhook_id")),
    )
    with op.batch_alter_table("webhook_outbox", schema=None) as batch_op:
        batch_op.create_index(
            "ix_webhook_outbox_status_due", ["status", "next_attempt_at"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_webhook_outbox_delivery_id"), ["delivery_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("webhook_outbox", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_webhook_outbox_delivery_id"))
        batch_op.drop_index("ix_webhook_outbox_status_due")
    op.drop_table("webhook_outbox")
    op.drop_table("suppressions")
    op.drop_index("uq_deliveries_original", table_name="deliveries")
    # Resends share (event_id, kind, recipient) with their original; the
    # constraint of 0002 cannot come back while they exist.
    op.execute("DELETE FROM deliveries WHERE resend_of IS NOT NULL")
    with op.batch_alter_table("deliveries", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_deliveries_recipient"))
        batch_op.drop_index(batch_op.f("ix_deliveries_resend_of"))
        batch_op.create_unique_constraint(
            batch_op.f("uq_deliveries_event_id_kind_recipient"), ["event_id", "kind", "recipient"]
        )
        batch_op.drop_column("feedback_at")
        batch_op.drop_column("feedback")
        batch_op.drop_column("bounce_text")
        batch_op.drop_column("bounce_status")
        batch_op.drop_column("bounced_at")
        batch_op.drop_column("relay")
        batch_op.drop_column("ignore_suppression")
        batch_op.drop_column("resend_of")
