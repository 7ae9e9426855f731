"""refresh_families: a login's family with its newest token's expiry, so dead families can be deleted

Revision ID: 0006_refresh_families
Revises: 0005_outbox_notify
Create Date: 2026-12-06 04:20:00

Each refresh token was a row of its own, never deleted: a row a login and a row a rotation, for ever. A
family's expiry (its newest token's) is kept in a row of its own, moved on at each rotation; the tokens
reference it and go with it (ON DELETE CASCADE), so the outbox relay's retention deletes a dead family by
its expiry's index, whatever the live families hold. The families of the tokens already written are made
from them here.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006_refresh_families"
down_revision = "0005_outbox_notify"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "refresh_families",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_refresh_families_user_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_refresh_families")),
    )
    op.create_index(op.f("ix_refresh_families_expires_at"), "refresh_families", ["expires_at"], unique=False)
    op.create_index(op.f("ix_refresh_families_user_id"), "refresh_families", ["user_id"], unique=False)
    op.execute(
        "INSERT INTO refresh_families (id, user_id, expires_at)"
        " SELECT family_id, (array_agg(user_id))[1], max(expires_at) FROM refresh_tokens GROUP BY family_id"
    )
    op.create_foreign_key(
        op.f("fk_refresh_tokens_family_id_refresh_families"),
        "refresh_tokens",
        "refresh_families",
        ["family_id"],
        ["id"],
        ondelete="CASCADE",
    )


def downgrade() -> None:
    op.drop_constraint(
        op.f("fk_refresh_tokens_family_id_refresh_families"), "refresh_tokens", type_="foreignkey"
    )
    op.drop_index(op.f("ix_refresh_families_user_id"), table_name="refresh_families")
    op.drop_index(op.f("ix_refresh_families_expires_at"), table_name="refresh_families")
    op.drop_table("refresh_families")
