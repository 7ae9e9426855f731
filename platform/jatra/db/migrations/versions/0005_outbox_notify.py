"""outbox rows ring the relay: NOTIFY jatra_outbox after each statement that inserts them

Revision ID: 0005_outbox_notify
Revises: 0004_contact_email
Create Date: 2026-12-03 14:40:00

Postgres delivers a NOTIFY when the inserting transaction commits (never for one rolled back) and folds
identical ones of a transaction into one, so a booking's transaction rings the relay once, just as its
message becomes visible. A statement-level trigger: one ring per INSERT, not per row.
"""

from __future__ import annotations

from alembic import op

revision = "0005_outbox_notify"
down_revision = "0004_contact_email"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        CREATE FUNCTION jatra_outbox_notify() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            PERFORM pg_notify('jatra_outbox', '');
            RETURN NULL;
        END
        $$
        """
    )
    op.execute(
        "CREATE TRIGGER outbox_notify AFTER INSERT ON outbox"
        " FOR EACH STATEMENT EXECUTE FUNCTION jatra_outbox_notify()"
    )


def downgrade() -> None:
    op.execute("DROP TRIGGER outbox_notify ON outbox")
    op.execute("DROP FUNCTION jatra_outbox_notify()")
