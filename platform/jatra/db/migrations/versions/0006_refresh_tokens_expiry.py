"""refresh_tokens.expires_at indexed: the outbox relay's retention deletes tokens long expired

Revision ID: 0006_refresh_tokens_expiry
Revises: 0005_outbox_notify
Create Date: 2026-12-06 04:40:00

A token is a row a login and a row a rotation, and none was ever deleted. The retention
(``jatra.infra.retention``) deletes the ones expired longer than ``JATRA_REFRESH_RETENTION_S`` ago, the
first expired first, by this index. Built CONCURRENTLY, outside the migration's transaction: a plain
CREATE INDEX would block every login and refresh while it reads the whole table. Code before this
revision runs unchanged beside it (a rolling deploy).
"""

from __future__ import annotations

from alembic import op

revision = "0006_refresh_tokens_expiry"
down_revision = "0005_outbox_notify"
branch_labels = None
depends_on = None

INDEX = "ix_refresh_tokens_expires_at"


def upgrade() -> None:
    with op.get_context().autocommit_block():
        # a failed CONCURRENTLY build leaves an invalid index of this name: dropped, to start over
        op.execute(f"DROP INDEX CONCURRENTLY IF EXISTS {INDEX}")
        op.create_index(INDEX, "refresh_tokens", ["expires_at"], unique=False, postgresql_concurrently=True)


def downgrade() -> None:
    with op.get_context().autocommit_block():
        op.drop_index(INDEX, table_name="refresh_tokens", postgresql_concurrently=True)
