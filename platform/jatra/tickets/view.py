"""What an e-ticket shows, read in one place for the API (PDF, verify) and the notifications worker."""

from __future__ import annotations

import datetime as dt
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import BigInteger, bindparam, text
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.ext.asyncio import AsyncSession

from jatra.db.bookings import Booking

SIGNED_FIELDS = ("ticket_number", "booking_id", "journey_id", "train_number", "from", "to", "departs_at",
                 "seat_labels")  # fmt: skip


#: the train, its stops in order and the seats' labels of one booking, in one statement (it was four
#: reads); the catalogue never changes under a booking
VIEW = (
    text(
        """
        SELECT t.number AS train_number, t.name AS train_name, j.departs_at,
               (SELECT array_agg(ts.station_code ORDER BY ts.seq) FROM train_stops ts
                WHERE ts.train_number = t.number) AS stations,
               (SELECT array_agg(ts.depart_min ORDER BY ts.seq) FROM train_stops ts
                WHERE ts.train_number = t.number) AS depart_mins,
               (SELECT jsonb_object_agg(s.id, c.code || '-' || s.number) FROM seats s
                JOIN coaches c ON c.id = s.coach_id WHERE s.id = ANY(:seat_ids)) AS labels
        FROM journeys j JOIN trains t ON t.number = j.train_number
        WHERE j.id = :journey_id
        """
    )
    .bindparams(bindparam("seat_ids", type_=ARRAY(BigInteger)))
    .columns(labels=JSONB)
)


async def ticket_view(session: AsyncSession, booking: Booking, tz: str) -> dict[str, Any]:
    row = (
        await session.execute(VIEW, {"journey_id": booking.journey_id, "seat_ids": booking.seat_ids})
    ).one()
    stops = list(zip(row.stations, row.depart_mins, strict=True))
    label = {int(seat_id): seat_label for seat_id, seat_label in row.labels.items()}
    from_code, depart_min = stops[booking.from_seq]
    departs = (row.departs_at + dt.timedelta(minutes=depart_min or 0)).astimezone(ZoneInfo(tz))
    return {
        "ticket_number": booking.ticket_number,
        "booking_id": str(booking.id),
        "journey_id": booking.journey_id,
        "train_number": row.train_number,
        "train_name": row.train_name,
        "from": from_code,
        "to": stops[booking.to_seq][0],
        "departs_at": departs.isoformat(timespec="minutes"),
        "class": booking.seat_class,
        "seats": booking.seat_ids,
        "seat_labels": [label[s] for s in booking.seat_ids],
        "passengers": booking.passengers,
        "amount": booking.amount,
    }


def qr_payload(view: dict[str, Any]) -> dict[str, Any]:
    """The signed part: what a checker needs offline, and no more."""
    return {key: view[key] for key in SIGNED_FIELDS} | {"names": [p["name"] for p in view["passengers"]]}
