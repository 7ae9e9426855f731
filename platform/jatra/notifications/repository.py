"""The notifications worker's SQL: a booking, its passenger's phone and its ticket's catalogue part, in one
statement asked in one exchange (jatra.infra.pg). It was two reads in a session (BEGIN, the booking
joined with its account, the ticket's view, ROLLBACK: each statement prepared again behind PgBouncer)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from jatra.infra.pg import Statements
from jatra.tickets.view import TicketRow, catalogue_columns

NOTICE = """
    SELECT b.id, b.user_id, b.status, b.reason, b.ticket_number, b.journey_id, b.seat_ids, b.from_seq,
           b.to_seq, b.seat_class, b.passengers, b.amount, b.contact_email, u.phone, CATALOGUE
    FROM bookings b JOIN users u ON u.id = b.user_id
    JOIN journeys j ON j.id = b.journey_id JOIN trains t ON t.number = j.train_number
    WHERE b.id = %(booking_id)s
    """.replace("CATALOGUE", catalogue_columns("b.seat_ids"))


@dataclass(frozen=True, slots=True)
class BookingNotice(TicketRow):
    """What a notice is made of: the booking and its ticket's catalogue part, and where to send it."""

    reason: str | None
    contact_email: str | None
    phone: str


async def booking_notice(pg: Statements, booking_id: uuid.UUID) -> BookingNotice | None:
    return await pg.one(NOTICE, {"booking_id": booking_id}, BookingNotice)
