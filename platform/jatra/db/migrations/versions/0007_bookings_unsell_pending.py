"""bookings.unsell_pending: a cancellation whose seats are not back on sale in Redis yet

Revision ID: 0007_bookings_unsell_pending
Revises: 0006_refresh_tokens_expiry
Create Date: 2026-12-06 07:35:00

A cancellation commits with the flag set and clears it once Redis has its seats back on sale; if Redis
failed just then, the reaper finds the flag and puts them back (``jatra.seats.reaper.sync_unsold_legs``).
Adding a column with a constant default rewrites nothing (Postgres 11+); the partial index, which holds only
the flagged rows, is built CONCURRENTLY, outside the migration's transaction, so bookings are not blocked.
Code before this revision runs unchanged beside it (a rolling deploy): it never sets the flag.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007_bookings_unsell_pending"
down_revision = "0006_refresh_tokens_expiry"
branch_labels = None
depends_on = None

INDEX = "ix_bookings_unsell_pending"


def upgrade() -> None:
    op.add_column(
        "bookings", sa.Column("unsell_pending", sa.Boolean(), server_default=sa.false(), nullable=False)
    )
    with op.get_context().autocommit_block():
        op.execute(f"DROP INDEX CONCURRENTLY IF EXISTS {INDEX}")  # a failed build leaves an invalid one
        op.create_index(
            INDEX,
            "bookings",
            ["id"],
            postgresql_where=sa.text("unsell_pending"),
            postgresql_concurrently=True,
        )


def downgrade() -> None:
    with op.get_context().autocommit_block():
        op.drop_index(INDEX, table_name="bookings", postgresql_concurrently=True)
    op.drop_column("bookings", "unsell_pending")
