"""The notifications worker's SQL: a booking and its passenger's phone, in one statement asked in one
exchange (jatra.infra.pg). The ticket's catalogue part comes from jatra.tickets.catalogue."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from jatra.infra.pg import Statements
from jatra.tickets.view import TICKET_ROW_COLUMNS, TicketRow

NOTICE = """
    SELECT COLUMNS, b.reason, b.contact_email, u.phone
    FROM bookings b JOIN users u ON u.id = b.user_id WHERE b.id = %(booking_id)s
    """.replace("COLUMNS", TICKET_ROW_COLUMNS)


@dataclass(frozen=True, slots=True)
class BookingNotice(TicketRow):
    """What a notice is made of: the booking, and where to send it."""

    reason: str | None
    contact_email: str | None
    phone: str


async def booking_notice(pg: Statements, booking_id: uuid.UUID) -> BookingNotice | None:
    return await pg.one(NOTICE, {"booking_id": booking_id}, BookingNotice)
