"""The payment worker's SQL: starting a charge and confirming a paid booking, each one statement.

Each is asked in one exchange through :mod:`jatra.infra.pg` (psycopg 3, autocommit: one statement is one
transaction, no BEGIN or COMMIT round trips, nothing prepared again behind PgBouncer). Starting was a
SELECT ... FOR UPDATE and an ORM flush (about six round trips behind PgBouncer), confirming a locked read,
a savepoint, the sale, three ORM writes and a commit (about fifteen); then each one statement through
SQLAlchemy on asyncpg, inside BEGIN and COMMIT behind PgBouncer (four exchanges). The rules stay where
they were: the WHERE clauses allow exactly the transitions of :data:`jatra.domain.booking_states.TRANSITIONS`
these steps make, the exclusion constraint on seat_sales still refuses a double sale (the whole statement
fails then, and the caller takes the careful path that records why), and the row lock orders concurrent
settlers as before.
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass

import psycopg
from psycopg.types.json import Jsonb

from jatra.infra.outbox import Draft
from jatra.infra.pg import Statements
from jatra.inventory.sales import DEADLOCK_DETECTED, EXCLUSION_VIOLATION

#: PAYMENT_PENDING -> PAYMENT_PROCESSING (a redelivery finds it processing, and leaves it as it is)
START = """
    WITH was AS (SELECT id, status FROM bookings WHERE id = %(booking_id)s FOR UPDATE)
    UPDATE bookings b
    SET status = 'PAYMENT_PROCESSING',
        updated_at = CASE WHEN was.status = 'PAYMENT_PENDING' THEN now() ELSE b.updated_at END
    FROM was
    WHERE b.id = was.id AND was.status IN ('PAYMENT_PENDING', 'PAYMENT_PROCESSING')
    RETURNING b.id, b.amount, b.payment_method, was.status AS was
    """

#: the sale, the booking CONFIRMED with its ticket number, the hold CONVERTED and the event in the outbox,
#: all or nothing; the booking as it was is returned whatever its status (nothing is written unless it
#: was PAYMENT_PENDING or PAYMENT_PROCESSING)
CONFIRM = """
    WITH was AS (
        SELECT id, user_id, hold_id, journey_id, seat_ids, from_seq, to_seq, seat_class, status, created_at
        FROM bookings WHERE id = %(booking_id)s FOR UPDATE
    ), open AS (
        SELECT * FROM was WHERE status IN ('PAYMENT_PENDING', 'PAYMENT_PROCESSING')
    ), sale AS (
        INSERT INTO seat_sales (journey_id, seat_id, legs, booking_id)
        SELECT open.journey_id, seat, int4range(open.from_seq, open.to_seq, '[)'), open.id
        FROM open, unnest(open.seat_ids) AS seat
    ), confirmed AS (
        UPDATE bookings b SET status = 'CONFIRMED', ticket_number = %(ticket_number)s, updated_at = now()
        FROM open WHERE b.id = open.id
    ), converted AS (
        UPDATE holds h SET status = 'CONVERTED' FROM open WHERE h.id = open.hold_id
    ), message AS (
        INSERT INTO outbox (exchange, routing_key, message_id, payload, headers)
        SELECT %(exchange)s, %(routing_key)s, %(message_id)s,
               jsonb_build_object('booking_id', open.id::text, 'status', 'CONFIRMED',
                                  'ticket_number', CAST(%(ticket_number)s AS text), 'reason', NULL,
                                  'user_id', open.user_id::text),
               %(trace)s
        FROM open
    )
    SELECT id, user_id, hold_id, journey_id, seat_ids, from_seq, to_seq, seat_class, status AS was, created_at
    FROM was
    """


@dataclass(frozen=True, slots=True)
class Charging:
    """A booking whose charge may now be made."""

    id: uuid.UUID
    amount: int
    payment_method: str
    #: its status before: PAYMENT_PENDING, or PAYMENT_PROCESSING for a redelivery
    was: str


@dataclass(frozen=True, slots=True)
class Confirming:
    """A booking as :data:`CONFIRM` found it; confirmed by it only if ``was`` allowed."""

    id: uuid.UUID
    user_id: uuid.UUID
    hold_id: uuid.UUID
    journey_id: int
    seat_ids: list[int]
    from_seq: int
    to_seq: int
    seat_class: str
    was: str
    created_at: dt.datetime


class SaleRefused(Exception):
    """The confirmation wrote nothing: a seat was sold meanwhile (the exclusion constraint) or the
    statement was a deadlock's victim. The careful path finds out which."""


async def start(pg: Statements, booking_id: uuid.UUID) -> Charging | None:
    """None: unknown, or no longer waiting for a charge."""
    return await pg.one(START, {"booking_id": booking_id}, Charging)


async def confirm(
    pg: Statements, booking_id: uuid.UUID, ticket_number: str, event: Draft
) -> Confirming | None:
    """None: unknown. Raises :class:`SaleRefused`, having written nothing."""
    params = {
        "booking_id": booking_id,
        "ticket_number": ticket_number,
        "exchange": event.exchange,
        "routing_key": event.routing_key,
        "message_id": event.message_id,
        "trace": Jsonb(event.headers),
    }
    try:
        return await pg.one(CONFIRM, params, Confirming)
    except psycopg.Error as exc:
        if exc.sqlstate in (EXCLUSION_VIOLATION, DEADLOCK_DETECTED):
            raise SaleRefused(exc.sqlstate) from exc
        raise
