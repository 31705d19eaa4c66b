"""group codes unique regardless of case

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-10

A group's code is stored as typed and compared case-folded: ``code_folded``
holds ``lower(code)`` (codes are ASCII) under a unique constraint, and every
look-up goes through it. Existing codes that differ only in case (DEMO and
demo) cannot both stay; the upgrade then stops before it changes anything
and names them.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from dispatcher.errors import DispatcherError

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


class CodesCollide(DispatcherError):
    """Existing group codes differ only in case; the migration cannot proceed."""


def collisions(connection: sa.Connection) -> list[list[str]]:
    """Codes that differ only in case, grouped, each group sorted."""
    rows = connection.execute(sa.text("SELECT code FROM customer_groups ORDER BY code")).all()
    by_folded: dict[str, list[str]] = {}
    for (code,) in rows:
        by_folded.setdefault(code.lower(), []).append(code)
    return [codes for codes in by_folded.values() if len(codes) > 1]


# How to keep one of them: give the others a new code (deliveries keep theirs).
RENAME = "UPDATE customer_groups SET code = 'NEW-CODE' WHERE code = 'old-code'"


def collision_message(found: list[list[str]]) -> str:
    shown = "; ".join(" and ".join(repr(code) for code in codes) for codes in found)
    return (
        f"cannot make group codes unique regardless of case: {shown} differ only in case; "
        "nothing was changed. Keep one code of each and rename the others in the database ("
        + RENAME
        + "), then run: dispatcher db upgrade"
    )


def upgrade() -> None:
    found = collisions(op.get_bind())
    if found:
        raise CodesCollide(collision_message(found))
    with op.batch_alter_table("customer_groups", schema=None) as batch_op:
        batch_op.add_column(sa.Column("code_folded", sa.String(length=64), nullable=True))
    op.execute(sa.text("UPDATE customer_groups SET code_folded = lower(code)"))
    with op.batch_alter_table("customer_groups", schema=None) as batch_op:
        batch_op.alter_column("code_folded", existing_type=sa.String(length=64), nullable=False)
        batch_op.create_unique_constraint(
            batch_op.f("uq_customer_groups_code_folded"), ["code_folded"]
        )


def downgrade() -> None:
    with op.batch_alter_table("customer_groups", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("uq_customer_groups_code_folded"), type_="unique")
        batch_op.drop_column("code_folded")
