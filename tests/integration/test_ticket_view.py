"""The e-ticket's view (what the PDF, the QR's signed payload and the notices show) read in one statement,
held equal to the same facts read table by table through the ORM, for a booking of two seats."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlalchemy import select

from jatra.db.bookings import Booking
from jatra.db.catalog import Coach, Journey, Seat, Train, TrainStop
from jatra.infra.db import create_engine, session_factory
from jatra.settings import Settings
from jatra.tickets.view import ticket_view
from tests.fixtures.accounts import Passenger
from tests.integration.payflow import unpaid_booking

pytestmark = pytest.mark.integration


async def test_the_view_shows_what_the_tables_say(
    client: AsyncTestClient[Litestar], passenger: Passenger, settings: Settings
) -> None:
    engine = create_engine(settings, admin=True)
    try:
        _, booking_id = await unpaid_booking(client, passenger, engine, seats=2)
        async with session_factory(engine)() as session:
            booking = await session.get(Booking, booking_id)
            assert booking is not None
            view = await ticket_view(session, booking, "Asia/Dhaka")

            journey = await session.get(Journey, booking.journey_id)
            assert journey is not None
            train = await session.get(Train, journey.train_number)
            assert train is not None
            stops = (
                await session.execute(
                    select(TrainStop.station_code, TrainStop.depart_min)
                    .where(TrainStop.train_number == train.number)
                    .order_by(TrainStop.seq)
                )
            ).all()
            labels = []
            for seat_id in booking.seat_ids:
                seat = await session.get(Seat, seat_id)
                assert seat is not None
                coach = await session.get(Coach, seat.coach_id)
                assert coach is not None
                labels.append(f"{coach.code}-{seat.number}")
    finally:
        await engine.dispose()
    departs = journey.departs_at + dt.timedelta(minutes=stops[booking.from_seq][1] or 0)
    assert view == {
        "ticket_number": booking.ticket_number, "booking_id": str(booking.id),
        "journey_id": booking.journey_id, "train_number": train.number, "train_name": train.name,
        "from": stops[booking.from_seq][0], "to": stops[booking.to_seq][0],
        "departs_at": departs.astimezone(ZoneInfo("Asia/Dhaka")).isoformat(timespec="minutes"),
        "class": booking.seat_class, "seats": booking.seat_ids, "seat_labels": labels,
        "passengers": booking.passengers, "amount": booking.amount,
    }  # fmt: skip
    assert view["from"] == "DA" and view["to"] == "CGP" and len(set(labels)) == 2
