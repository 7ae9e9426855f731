"""The e-ticket's view (what the PDF, the QR's signed payload and the notices show), read in one statement,
and read as the booking plus its catalogue part from memory, held equal to the same facts read table by
table through the ORM, for a booking of two seats."""

from __future__ import annotations

import dataclasses
import datetime as dt
import uuid
from typing import Any, LiteralString, TypeVar
from zoneinfo import ZoneInfo

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlalchemy import select

from jatra.bookings.repository import ticket_booking
from jatra.db.accounts import User
from jatra.db.bookings import Booking
from jatra.db.catalog import Coach, Journey, Seat, Train, TrainStop
from jatra.infra.db import create_engine, session_factory
from jatra.infra.pg import Statements
from jatra.notifications.repository import booking_notice
from jatra.settings import Settings
from jatra.tickets import catalogue as catalogue_module
from jatra.tickets.catalogue import forget, journey_catalogue
from jatra.tickets.view import compose_view, ticket_view
from tests.fixtures.accounts import Passenger
from tests.integration.payflow import unpaid_booking

pytestmark = pytest.mark.integration
T = TypeVar("T")


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


async def test_the_notice_and_the_download_read_the_same_view(
    client: AsyncTestClient[Litestar], passenger: Passenger, settings: Settings
) -> None:
    """The notifications worker's statement and the API's (for a download not drawn yet) read the booking
    in one exchange each (jatra.infra.pg), the worker's with the passenger's phone; with the catalogue
    part from this process's memory they give the view the ORM's read gives."""
    engine = create_engine(settings, admin=True)
    pg = Counting(settings, "test-notice", size=1, timeout_s=5)
    await pg.open()
    forget()
    try:
        _, booking_id = await unpaid_booking(client, passenger, engine, seats=2)
        async with session_factory(engine)() as session:
            booking = await session.get(Booking, booking_id)
            assert booking is not None
            expected = await ticket_view(session, booking, "Asia/Dhaka")
            phone = await session.scalar(select(User.phone).where(User.id == booking.user_id))
        found = await booking_notice(pg, booking_id)
        assert await booking_notice(pg, uuid.uuid4()) is None
        downloaded = await ticket_booking(pg, booking_id)
        assert await ticket_booking(pg, uuid.uuid4()) is None
        assert found is not None and downloaded is not None
        pg.asked.clear()
        catalogue = await journey_catalogue(pg, found)
        assert catalogue is not None
        assert len(pg.asked) == 2  # the journey, then its train: first met in this process
        assert await journey_catalogue(pg, found) == catalogue
        assert len(pg.asked) == 2  # then from memory
        # a seeding may add coaches to a train: a copy without the booking's seats is read again
        number = catalogue.train_number
        cached = catalogue_module._trains.get(number)
        assert cached is not None
        catalogue_module._trains.put(number, dataclasses.replace(cached, labels={}))
        again = await journey_catalogue(pg, found)
        assert len(pg.asked) == 3 and again == catalogue
        unknown = dataclasses.replace(found, journey_id=2**62)
        assert await journey_catalogue(pg, unknown) is None
    finally:
        await pg.close()
        await engine.dispose()
    assert compose_view(found, catalogue, "Asia/Dhaka") == expected
    assert compose_view(downloaded, catalogue, "Asia/Dhaka") == expected
    assert (downloaded.user_id, downloaded.status) == (found.user_id, "PAYMENT_PENDING")
    assert (found.phone, found.contact_email, found.status, found.reason) == (
        phone,
        None,
        "PAYMENT_PENDING",
        None,
    )


class Counting(Statements):
    """The real statements, noting each one asked."""

    asked: list[str]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.asked = []

    async def one(self, sql: LiteralString, params: dict[str, Any], row: type[T]) -> T | None:
        self.asked.append(sql)
        return await super().one(sql, params, row)
