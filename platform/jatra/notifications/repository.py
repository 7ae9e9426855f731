"""The notifications worker's SQL: a booking, its passenger's phone and its ticket's catalogue part, in one
statement asked in one exchange (jatra.infra.pg). It was two reads in a session (BEGIN, the booking
joined with its account, the ticket's view, ROLLBACK: each statement prepared again behind PgBouncer)."""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass
from typing import Any

from jatra.infra.pg import Statements
from jatra.tickets.view import catalogue_columns

NOTICE = """
    SELECT b.id, b.user_id, b.status, b.reason, b.ticket_number, b.journey_id, b.seat_ids, b.from_seq,
           b.to_seq, b.seat_class, b.passengers, b.amount, b.contact_email, u.phone, CATALOGUE
    FROM bookings b JOIN users u ON u.id = b.user_id
    JOIN journeys j ON j.id = b.journey_id JOIN trains t ON t.number = j.train_number
    WHERE b.id = %(booking_id)s
    """.replace("CATALOGUE", catalogue_columns("b.seat_ids"))


@dataclass(frozen=True, slots=True)
class BookingNotice:
    """What a notice is made of: the booking (a :class:`jatra.tickets.view.TicketBooking`), where to send
    it, and its ticket's catalogue part (a :class:`jatra.tickets.view.Catalogue`)."""

    id: uuid.UUID
    user_id: uuid.UUID
    status: str
    reason: str | None
    ticket_number: str | None
    journey_id: int
    seat_ids: list[int]
    from_seq: int
    to_seq: int
    seat_class: str
    passengers: list[dict[str, Any]]
    amount: int
    contact_email: str | None
    phone: str
    train_number: str
    train_name: str
    departs_at: dt.datetime
    stations: list[str]
    depart_mins: list[int | None]
    labels: dict[str, str]


async def booking_notice(pg: Statements, booking_id: uuid.UUID) -> BookingNotice | None:
    return await pg.one(NOTICE, {"booking_id": booking_id}, BookingNotice)
