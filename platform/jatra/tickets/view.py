"""What an e-ticket shows, read in one place for the API (PDF, verify) and the notifications worker."""

from __future__ import annotations

import datetime as dt
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from jatra.db.bookings import Booking
from jatra.db.catalog import Coach, Journey, Seat, Train, TrainStop

SIGNED_FIELDS = ("ticket_number", "booking_id", "journey_id", "train_number", "from", "to", "departs_at",
                 "seat_labels")  # fmt: skip


async def ticket_view(session: AsyncSession, booking: Booking, tz: str) -> dict[str, Any]:
    journey = await session.get(Journey, booking.journey_id)
    assert journey is not None
    train = await session.get(Train, journey.train_number)
    assert train is not None
    stops = (
        await session.execute(
            select(TrainStop.station_code, TrainStop.depart_min)
            .where(TrainStop.train_number == journey.train_number)
            .order_by(TrainStop.seq)
        )
    ).all()
    seats = (
        await session.execute(
            select(Seat.id, Coach.code, Seat.number)
            .join(Coach, Coach.id == Seat.coach_id)
            .where(Seat.id.in_(booking.seat_ids))
        )
    ).all()
    label = {seat_id: f"{coach}-{number}" for seat_id, coach, number in seats}
    from_code, depart_min = stops[booking.from_seq]
    departs = (journey.departs_at + dt.timedelta(minutes=depart_min or 0)).astimezone(ZoneInfo(tz))
    return {
        "ticket_number": booking.ticket_number,
        "booking_id": str(booking.id),
        "journey_id": booking.journey_id,
        "train_number": train.number,
        "train_name": train.name,
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
