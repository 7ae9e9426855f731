"""The payment worker's SQL: starting a charge and confirming a paid booking, each one statement.

Each runs on a connection of its own, in autocommit when it goes straight to Postgres (one statement is
one transaction: no BEGIN or COMMIT round trips; behind PgBouncer it needs them, see :func:`one_statement`).
Starting was a SELECT ... FOR UPDATE and an ORM flush
(about six round trips behind PgBouncer), confirming a locked read, a savepoint, the sale, three ORM
writes and a commit (about fifteen). The rules stay where they were: the WHERE clauses allow exactly the
transitions of :data:`jatra.domain.booking_states.TRANSITIONS` these steps make, the exclusion
constraint on seat_sales still refuses a double sale (the whole statement fails then, and the caller
takes the careful path that records why), and the row lock orders concurrent settlers as before.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from sqlalchemy import bindparam, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession

from jatra.infra.db import VIA_PGBOUNCER
from jatra.infra.outbox import Draft

#: PAYMENT_PENDING -> PAYMENT_PROCESSING (a redelivery finds it processing, and leaves it as it is)
START = text(
    """
    WITH was AS (SELECT id, status FROM bookings WHERE id = :booking_id FOR UPDATE)
    UPDATE bookings b
    SET status = 'PAYMENT_PROCESSING',
        updated_at = CASE WHEN was.status = 'PAYMENT_PENDING' THEN now() ELSE b.updated_at END
    FROM was
    WHERE b.id = was.id AND was.status IN ('PAYMENT_PENDING', 'PAYMENT_PROCESSING')
    RETURNING b.id, b.amount, b.payment_method, was.status AS was
    """
)

#: the sale, the booking CONFIRMED with its ticket number, the hold CONVERTED and the event in the outbox,
#: all or nothing; the booking as it was is returned whatever its status (nothing is written unless it
#: was PAYMENT_PENDING or PAYMENT_PROCESSING)
CONFIRM = text(
    """
    WITH was AS (
        SELECT id, user_id, hold_id, journey_id, seat_ids, from_seq, to_seq, seat_class, status, created_at
        FROM bookings WHERE id = :booking_id FOR UPDATE
    ), open AS (
        SELECT * FROM was WHERE status IN ('PAYMENT_PENDING', 'PAYMENT_PROCESSING')
    ), sale AS (
        INSERT INTO seat_sales (journey_id, seat_id, legs, booking_id)
        SELECT open.journey_id, seat, int4range(open.from_seq, open.to_seq, '[)'), open.id
        FROM open, unnest(open.seat_ids) AS seat
    ), confirmed AS (
        UPDATE bookings b SET status = 'CONFIRMED', ticket_number = :ticket_number, updated_at = now()
        FROM open WHERE b.id = open.id
    ), converted AS (
        UPDATE holds h SET status = 'CONVERTED' FROM open WHERE h.id = open.hold_id
    ), message AS (
        INSERT INTO outbox (exchange, routing_key, message_id, payload, headers)
        SELECT :exchange, :routing_key, :message_id,
               jsonb_build_object('booking_id', open.id::text, 'status', 'CONFIRMED',
                                  'ticket_number', CAST(:ticket_number AS text), 'reason', NULL,
                                  'user_id', open.user_id::text),
               :trace
        FROM open
    )
    SELECT id, hold_id, journey_id, seat_ids, from_seq, to_seq, seat_class, status AS was, created_at
    FROM was
    """
).bindparams(bindparam("trace", type_=JSONB))


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
    hold_id: uuid.UUID
    journey_id: int
    seat_ids: list[int]
    from_seq: int
    to_seq: int
    seat_class: str
    was: str
    created_at: dt.datetime


@asynccontextmanager
async def one_statement(session: AsyncSession) -> AsyncIterator[AsyncConnection]:
    """A connection of the session's engine for one statement: in autocommit straight to Postgres (no
    BEGIN, no COMMIT); behind PgBouncer in a transaction, because asyncpg prepares a statement and runs it
    in two exchanges, and between them PgBouncer's transaction pooling may hand the server connection
    (and the prepared statement with it) to another client when no transaction is open."""
    engine = session.bind
    assert isinstance(engine, AsyncEngine), "sessions are made on an engine"
    async with engine.connect() as conn:
        if engine.get_execution_options().get(VIA_PGBOUNCER, False):
            async with conn.begin():
                yield conn
        else:
            yield await conn.execution_options(isolation_level="AUTOCOMMIT")


async def start(session: AsyncSession, booking_id: uuid.UUID) -> Charging | None:
    """None: unknown, or no longer waiting for a charge."""
    async with one_statement(session) as conn:
        row = (await conn.execute(START, {"booking_id": booking_id})).first()
    return None if row is None else Charging(row.id, row.amount, row.payment_method, row.was)


async def confirm(
    session: AsyncSession, booking_id: uuid.UUID, ticket_number: str, event: Draft
) -> Confirming | None:
    """None: unknown. Raises IntegrityError (a seat sold meanwhile) or a deadlock's DBAPIError, having
    written nothing."""
    async with one_statement(session) as conn:
        row = (
            await conn.execute(
                CONFIRM,
                {
                    "booking_id": booking_id,
                    "ticket_number": ticket_number,
                    "exchange": event.exchange,
                    "routing_key": event.routing_key,
                    "message_id": event.message_id,
                    "trace": event.headers,
                },
            )
        ).first()
    if row is None:
        return None
    return Confirming(
        row.id, row.hold_id, row.journey_id, list(row.seat_ids), row.from_seq, row.to_seq,
        row.seat_class, row.was, row.created_at,
    )  # fmt: skip
