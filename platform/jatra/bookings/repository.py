"""The bookings service's SQL. Accepting a booking is one statement: the idempotency key's claim with its
answer, the booking row made from the hold and its payment request in the outbox, all or nothing, in one
round trip (it was a claim committed on its own, then four statements, each prepared again behind PgBouncer,
plus an ORM object per row), asked through jatra.infra.pg in a transaction of its own, as is the outcome's
read (one exchange). That statement is a function in Postgres (:data:`ACCEPT`), so its plan is kept."""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass
from typing import Any

from psycopg.types.json import Jsonb
from sqlalchemy import delete, literal, select, text, tuple_, update
from sqlalchemy.ext.asyncio import AsyncSession

from jatra.db.bookings import Booking
from jatra.db.inventory import Hold, SeatSale
from jatra.infra import idempotency
from jatra.infra.outbox import Draft
from jatra.infra.pg import Statements, Transaction
from jatra.tickets.view import TICKET_ROW_COLUMNS, TicketRow

#: the key claimed with its answer, the booking and its outbox message; no row when the hold cannot be
#: booked this way or the key is not free (the key's claim is then undone with the transaction). The
#: statement is the function ``jatra_accept_booking`` (migration 0008, where it is written out): behind
#: PgBouncer's transaction pooling nothing the client prepares survives, and a function's plan is kept
#: per server connection, so the longest statement of the hot path is no longer parsed and planned again
#: for each booking. To change it, write a new function (another name) in a new revision and call that:
#: during a rolling deploy the old code still calls the old one. Its steps: the hold, ACTIVE, this user's
#: and of this many seats; the 202 to replay; the key's claim with it (ON CONFLICT DO NOTHING, see
#: :mod:`jatra.infra.idempotency`); the booking, only if the key was claimed (ON CONFLICT on its hold: a
#: hold is booked once); its payment request.
ACCEPT = """
    SELECT journey_id, seat_class, body FROM jatra_accept_booking(
        p_hold_id => %(hold_id)s, p_user_id => %(user_id)s, p_seats => %(seats)s,
        p_booking_id => %(booking_id)s, p_location => %(location)s, p_passengers => %(passengers)s,
        p_method => %(method)s, p_email => %(email)s, p_key => %(key)s, p_digest => %(digest)s,
        p_now => %(now)s, p_expires_at => %(expires_at)s, p_exchange => %(exchange)s,
        p_routing_key => %(routing_key)s, p_message_id => %(message_id)s, p_trace => %(trace)s)
    """


@dataclass(frozen=True, slots=True)
class Accepted:
    journey_id: int
    seat_class: str
    #: the 202's body, as stored for replays
    body: dict[str, Any]


async def accept(
    tx: Transaction,
    *,
    booking_id: uuid.UUID,
    user_id: uuid.UUID,
    key: str,
    digest: str,
    hold_id: uuid.UUID,
    seats: int,
    passengers: list[dict[str, Any]],
    method: str,
    email: str | None,
    payment: Draft,
) -> Accepted | None:
    """Claim the key with its answer and write the booking and its payment request in ``tx`` (committed
    when its block ends). None, and ``tx`` rolls back when its block ends: the key is taken
    (:func:`idempotency.seen` tells by what), or the hold is unknown, not this user's, not ACTIVE, booked
    already, or has another number of seats (:func:`hold_of` tells which)."""
    params = {
        "booking_id": booking_id,
        "user_id": user_id,
        "hold_id": hold_id,
        "seats": seats,
        "passengers": Jsonb(passengers),
        "method": method,
        "email": email,
        "key": key,
        "digest": digest,
        **idempotency.claim_times(),
        "exchange": payment.exchange,
        "routing_key": payment.routing_key,
        "message_id": payment.message_id,
        "trace": Jsonb(payment.headers),
        "location": Jsonb({"Location": f"/api/v1/bookings/{booking_id}"}),
    }
    accepted = await tx.one(ACCEPT, params, Accepted)
    if accepted is None:
        tx.undo()  # a claim may have been written for a booking that was not
    return accepted


async def hold_of(session: AsyncSession, hold_id: uuid.UUID) -> tuple[Hold | None, bool]:
    """Why a hold could not be booked: the hold (None if unknown) and whether a booking already has it."""
    hold = await session.get(Hold, hold_id)
    booked = hold is not None and (
        await session.scalar(
            text("SELECT EXISTS (SELECT 1 FROM bookings WHERE hold_id = :h)"), {"h": hold_id}
        )
    )
    return hold, bool(booked)


#: what its passenger sees of a booking (the columns named as BookingOut's fields), and whose it is
OUTCOME = """
    SELECT id AS booking_id, user_id, status, reason, journey_id, seat_ids AS seats, passengers,
           payment_method, amount, ticket_number, refund_amount, created_at
    FROM bookings WHERE id = %(booking_id)s
    """


@dataclass(frozen=True, slots=True)
class Outcome:
    booking_id: uuid.UUID
    user_id: uuid.UUID
    status: str
    reason: str | None
    journey_id: int
    seats: list[int]
    passengers: list[dict[str, Any]]
    payment_method: str
    amount: int
    ticket_number: str | None
    refund_amount: int | None
    created_at: dt.datetime


#: what a ticket shows of the booking, with its owner and status (the catalogue part comes from
#: jatra.tickets.catalogue, read once per process and journey)
TICKET = "SELECT COLUMNS FROM bookings b WHERE b.id = %(booking_id)s".replace("COLUMNS", TICKET_ROW_COLUMNS)


async def ticket_booking(pg: Statements, booking_id: uuid.UUID) -> TicketRow | None:
    """The booking behind a ticket not cached yet, in one exchange (jatra.infra.pg). In a rush the
    passenger asks for the ticket as soon as the booking is confirmed, so the download nearly always comes
    before the worker's render, and most often renders it itself: this was a session (BEGIN, the booking
    as an ORM object, the catalogue's part, ROLLBACK)."""
    return await pg.one(TICKET, {"booking_id": booking_id}, TicketRow)


async def outcome(pg: Statements, booking_id: uuid.UUID) -> Outcome | None:
    """The booking as its passenger sees it, in one exchange (jatra.infra.pg): the outcome's read, asked
    once or twice per booking, is the commonest read of the flow."""
    return await pg.one(OUTCOME, {"booking_id": booking_id}, Outcome)


async def locked(session: AsyncSession, booking_id: uuid.UUID) -> Booking | None:
    """The booking, its row locked until the transaction ends (a cancellation)."""
    return (await session.scalars(select(Booking).where(Booking.id == booking_id).with_for_update())).first()


async def unsold(session: AsyncSession, booking_id: uuid.UUID) -> None:
    """The cancelled booking's seats are back on sale in Redis: nothing left for the reaper."""
    await session.execute(update(Booking).where(Booking.id == booking_id).values(unsell_pending=False))
    await session.commit()


async def unsell(session: AsyncSession, booking_id: uuid.UUID) -> None:
    """The booking's seats back on sale (its sales deleted)."""
    await session.execute(delete(SeatSale).where(SeatSale.booking_id == booking_id))


async def newest_first(
    session: AsyncSession, user_id: uuid.UUID, limit: int, after: tuple[dt.datetime, uuid.UUID] | None
) -> list[Booking]:
    """An account's bookings, newest first, after the (created_at, id) of the last one seen (keyset)."""
    stmt = select(Booking).where(Booking.user_id == user_id)
    if after is not None:
        stmt = stmt.where(
            tuple_(Booking.created_at, Booking.id) < tuple_(literal(after[0]), literal(after[1]))
        )
    ordered = stmt.order_by(Booking.created_at.desc(), Booking.id.desc()).limit(limit)
    return list((await session.scalars(ordered)).all())
