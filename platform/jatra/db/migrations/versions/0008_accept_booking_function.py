"""jatra_accept_booking: accepting a booking as a function, so that Postgres keeps its plan

Revision ID: 0008_accept_booking_function
Revises: 0007_bookings_unsell_pending
Create Date: 2026-12-06 20:40:00

The API reaches Postgres through PgBouncer's transaction pooling, where nothing the client prepares survives
(PgBouncer 1.18, the version Debian ships and compose builds, has no ``max_prepared_statements``), so the
booking's statement, the longest of the hot path (the key's claim with its answer, the booking from its
hold, the payment request in the outbox), was parsed and planned again for every booking: 0.24 ms of
planning alone in ``pg_stat_statements``. PL/pgSQL parses a function's statements once per server
connection and, after its first few calls there, keeps a generic plan; PgBouncer's server connections
live long, so the API now asks ``SELECT ... FROM jatra_accept_booking(...)``, a call that costs little to
parse and plan. The statement is the one ``jatra.bookings.repository`` asked until this revision, its
parameters as arguments.

A changed statement is a new function (a new name or signature) in a new revision, never this one
replaced: during a rolling deploy the old code calls the old one. Code before this revision runs
unchanged beside it: it asks the statement itself. ``pg_stat_statements``, ``pg_stat_activity`` and the
slow-statement log show the call, not the statement inside (``pg_stat_statements.track = all`` shows
both). PL/pgSQL checks the tables and columns it names at its first call in a session, not here: the
booking tests call it.
"""

from __future__ import annotations

from alembic import op

revision = "0008_accept_booking_function"
down_revision = "0007_bookings_unsell_pending"
branch_labels = None
depends_on = None

#: the argument types, in order: what names this function among any others of its name
ARGUMENTS = (
    "uuid, uuid, integer, uuid, jsonb, jsonb, text, text, text, text, timestamptz, timestamptz,"
    " text, text, uuid, jsonb"
)
#: the arguments' names are the repository's parameter names with a ``p_`` prefix; the result columns'
#: names are the table columns they come from, hence ``use_column``
FUNCTION = """
CREATE FUNCTION jatra_accept_booking(
    p_hold_id uuid, p_user_id uuid, p_seats integer, p_booking_id uuid, p_location jsonb,
    p_passengers jsonb, p_method text, p_email text, p_key text, p_digest text,
    p_now timestamptz, p_expires_at timestamptz, p_exchange text, p_routing_key text,
    p_message_id uuid, p_trace jsonb
) RETURNS TABLE (journey_id bigint, seat_class varchar, body jsonb)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
BEGIN
    RETURN QUERY
    WITH hold AS (
        SELECT id, user_id, journey_id, seat_ids, from_seq, to_seq, seat_class, total_fare FROM holds
        WHERE id = p_hold_id AND user_id = p_user_id AND status = 'ACTIVE'
          AND cardinality(seat_ids) = p_seats
    ), answer AS (
        SELECT 202 AS status, p_location AS headers,
               jsonb_build_object('booking_id', p_booking_id::text, 'status', 'PAYMENT_PENDING',
                                  'amount', total_fare) AS body
        FROM hold
    ), claim AS (
        INSERT INTO idempotency_keys (user_id, key, request_hash, status, created_at, expires_at,
                                      response_status, response_body, response_headers)
        SELECT p_user_id, p_key, p_digest, 'DONE', p_now, p_expires_at, status, body, headers
        FROM answer
        ON CONFLICT (user_id, key) DO NOTHING
        RETURNING key
    ), booking AS (
        INSERT INTO bookings (id, user_id, hold_id, journey_id, seat_ids, from_seq, to_seq, seat_class,
                              passengers, payment_method, amount, contact_email, status)
        SELECT p_booking_id, user_id, id, journey_id, seat_ids, from_seq, to_seq, seat_class,
               p_passengers, p_method, total_fare, p_email, 'PAYMENT_PENDING'
        FROM hold WHERE EXISTS (SELECT 1 FROM claim)
        ON CONFLICT (hold_id) DO NOTHING
        RETURNING id, journey_id, amount, status, seat_class
    ), message AS (
        INSERT INTO outbox (exchange, routing_key, message_id, payload, headers)
        SELECT p_exchange, p_routing_key, p_message_id,
               jsonb_build_object('booking_id', id::text, 'amount', amount, 'method', p_method), p_trace
        FROM booking
    )
    SELECT booking.journey_id, booking.seat_class::varchar, answer.body FROM booking, answer;
END
$$
"""


def upgrade() -> None:
    op.execute(FUNCTION)


def downgrade() -> None:
    op.execute(f"DROP FUNCTION jatra_accept_booking({ARGUMENTS})")
