"""configuration store

Revision ID: 0001
Revises:
Create Date: 2026-11-27
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "customer_groups",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("code", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("current_version_id", sa.Integer(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_customer_groups")),
        sa.UniqueConstraint("code", name=op.f("uq_customer_groups_code")),
    )
    op.create_table(
        "settings_versions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("group_id", sa.Integer(), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("actor", sa.String(length=200), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("changed_fields", sa.JSON(), nullable=False),
        sa.Column("restored_from", sa.Integer(), nullable=True),
        sa.Column("access_requests_to", sa.String(length=254), nullable=False),
        sa.Column("send_from", sa.String(length=500), nullable=False),
        sa.Column("default_locale", sa.String(length=35), nullable=True),
        sa.Column("send_to_customers_not_self_initiated", sa.Boolean(), nullable=True),
        sa.Column("notify_new_main_contact", sa.Boolean(), nullable=True),
        sa.Column("notify_old_main_contact", sa.Boolean(), nullable=True),
        sa.ForeignKeyConstraint(
            ["group_id"],
            ["customer_groups.id"],
            name=op.f("fk_settings_versions_group_id_customer_groups"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_settings_versions")),
        sa.UniqueConstraint(
            "group_id", "number", name=op.f("uq_settings_versions_group_id_number")
        ),
    )
    with op.batch_alter_table("settings_versions", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_settings_versions_group_id"), ["group_id"], unique=False
        )

    op.create_table(
        "settings_texts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("version_id", sa.Integer(), nullable=False),
        sa.Column("locale", sa.String(length=35), nullable=False),
        sa.Column("section", sa.String(length=64), nullable=False),
        sa.Column("subject", sa.Text(), nullable=True),
        sa.Column("body", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["version_id"],
            ["settings_versions.id"],
            name=op.f("fk_settings_texts_version_id_settings_versions"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_settings_texts")),
        sa.UniqueConstraint(
            "version_id",
            "locale",
            "section",
            name=op.f("uq_settings_texts_version_id_locale_section"),
        ),
    )
    with op.batch_alter_table("settings_texts", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_settings_texts_version_id"), ["version_id"], unique=False
        )

    # The group points at its current version and versions point at their
    # group; the second foreign key can only be added once both tables exist.
    with op.batch_alter_table("customer_groups", schema=None) as batch_op:
        batch_op.create_foreign_key(
            batch_op.f("fk_customer_groups_current_version_id_settings_versions"),
            "settings_versions",
            ["current_version_id"],
            ["id"],
            ondelete="SET NULL",
        )


def downgrade() -> None:
    with op.batch_alter_table("customer_groups", schema=None) as batch_op:
        batch_op.drop_constraint(
            batch_op.f("fk_customer_groups_current_version_id_settings_versions"),
            type_="foreignkey",
        )
    with op.batch_alter_table("settings_texts", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_settings_texts_version_id"))

    op.drop_table("settings_texts")
    with op.batch_alter_table("settings_versions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_settings_versions_group_id"))

    op.drop_table("settings_versions")
    op.drop_table("customer_groups")
