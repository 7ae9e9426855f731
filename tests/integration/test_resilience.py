"""Nothing accepted is lost: stuck bookings are reconciled, and a broker restart loses no booking."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import uuid
from collections import Counter

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlalchemy import select, update

from jatra.db.bookings import Booking, ProviderCharge
from jatra.db.inventory import Hold
from jatra.infra.resources import open_resources
from jatra.payments.reconciler import reconcile
from jatra.settings import Settings
from jatra.stack.manager import Stack
from jatra.stack.stores import RabbitMQ
from tests.fixtures.accounts import MakePassengers, Passenger
from tests.integration.payflow import RIDER, book, final_state, hold_for, set_faults

pytestmark = [pytest.mark.integration, pytest.mark.slow]
Client = AsyncTestClient[Litestar]


async def stuck_booking(client: Client, who: Passenger, settings: Settings, charged: bool) -> Booking:
    """A booking whose payment message was lost: written straight to Postgres, ten minutes old."""
    hold = await hold_for(client, who, "DA", "SYT", days_ahead=6)
    journey = hold["journey_id"]
    async with open_resources(settings, "test", {"db"}) as res, res.db()() as session:
        held = await session.get(Hold, uuid.UUID(hold["hold_id"]))
        assert held is not None
        booking = Booking(
            id=uuid.uuid4(),
            user_id=who.user_id,
            hold_id=held.id,
            journey_id=journey,
            seat_ids=held.seat_ids,
            from_seq=held.from_seq,
            to_seq=held.to_seq,
            seat_class=held.seat_class,
            passengers=[RIDER],
            payment_method="bkash",
            amount=held.total_fare,
            status="PAYMENT_PROCESSING",
        )
        session.add(booking)
        await session.flush()
        ten_minutes_ago = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=10)
        await session.execute(
            update(Booking).where(Booking.id == booking.id).values(created_at=ten_minutes_ago)
        )
        if charged:
            session.add(
                ProviderCharge(
                    idempotency_key=str(booking.id), amount=booking.amount, method="bkash", status="CAPTURED"
                )
            )
        await session.commit()
    return booking


async def test_reconciliation_settles_stuck_bookings(
    jatra_processes_running: Stack, client: Client, make_passengers: MakePassengers, settings: Settings
) -> None:
    paid_rider, unpaid_rider = await make_passengers(2)
    paid = await stuck_booking(client, paid_rider, settings, charged=True)
    unpaid = await stuck_booking(client, unpaid_rider, settings, charged=False)
    async with open_resources(dataclasses.replace(settings, hold_ttl_s=300), "test", {"db", "redis"}) as res:
        assert await reconcile(res) >= 2
        async with res.db()() as session:
            rows = {
                b.id: b
                for b in (
                    await session.scalars(select(Booking).where(Booking.id.in_([paid.id, unpaid.id])))
                ).all()
            }
    assert (
        rows[paid.id].status == "CONFIRMED" and rows[paid.id].ticket_number
    )  # captured money gets its ticket
    assert rows[unpaid.id].status == "PAYMENT_FAILED" and "never reached" in (rows[unpaid.id].reason or "")


async def test_a_broker_restart_mid_burst_loses_no_booking(
    jatra_processes_running: Stack, client: Client, make_passengers: MakePassengers, settings: Settings
) -> None:
    await set_faults(settings, outage=False, decline_rate=0.0, latency_ms=0, latency_after_capture_ms=0)
    riders = await make_passengers(24)
    first = await asyncio.gather(*(book(client, who) for who in riders[:12]))
    jatra_processes_running.down(["rabbitmq"])  # bookings keep being accepted: they wait in the outbox
    second = await asyncio.gather(*(book(client, who) for who in riders[12:]))
    jatra_processes_running.up([RabbitMQ()])
    results = await asyncio.gather(
        *(
            final_state(client, who, b["booking_id"], within_s=90)
            for who, b in zip(riders, first + second, strict=True)
        )
    )
    assert Counter(r["status"] for r in results) == {"CONFIRMED": 24}
