"""Cancelling a confirmed booking: refund by the rule, seats back on sale, REFUNDED after the provider."""

from __future__ import annotations

import asyncio
import time

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlalchemy import select

from jatra.db.bookings import ProviderCharge
from jatra.infra.db import create_engine, session_factory
from jatra.settings import Settings
from jatra.stack.manager import Stack
from tests.fixtures.accounts import MakePassengers
from tests.integration.payflow import book, final_state, set_faults
from tests.integration.test_notifications import messages_for

pytestmark = [pytest.mark.integration, pytest.mark.slow]
Client = AsyncTestClient[Litestar]


async def test_cancel_refunds_and_frees_the_seats(
    jatra_processes_running: Stack, client: Client, make_passengers: MakePassengers, settings: Settings
) -> None:
    await set_faults(settings, outage=False, decline_rate=0.0, latency_ms=0, latency_after_capture_ms=0)
    owner, other = await make_passengers(2)
    booked = await book(client, owner, seats=2)
    assert (await final_state(client, owner, booked["booking_id"]))["status"] == "CONFIRMED"
    url = f"/api/v1/bookings/{booked['booking_id']}/cancel"

    assert (await client.post(url, headers=other.headers)).status_code == 404
    cancelled = await client.post(url, headers=owner.headers)
    assert cancelled.status_code == 200, cancelled.text
    body = cancelled.json()
    assert body["status"] == "CANCELLED"
    assert body["refund_amount"] == int(body["amount"] * 0.9)  # five days ahead: 10 % fee
    again = await client.post(url, headers=owner.headers)
    assert again.status_code == 409 and again.json()["type"].endswith("booking-state")

    seat_map = (
        await client.get(f"/api/v1/journeys/{booked['journey_id']}/seats", params={"from": "DA", "to": "CGP"})
    ).json()
    assert {s["status"] for s in seat_map["seats"] if s["seat_id"] in booked["seats"]} == {"free"}

    deadline = time.monotonic() + 20
    status = ""
    while time.monotonic() < deadline:
        status = (await client.get(f"/api/v1/bookings/{booked['booking_id']}", headers=owner.headers)).json()[
            "status"
        ]
        if status == "REFUNDED":
            break
        await asyncio.sleep(0.1)
    assert status == "REFUNDED"
    engine = create_engine(settings, admin=True)
    async with session_factory(engine)() as session:
        ledger = await session.scalar(
            select(ProviderCharge.status).where(ProviderCharge.idempotency_key == booked["booking_id"])
        )
    await engine.dispose()
    assert ledger == "REFUNDED"
    assert await messages_for(settings, owner.phone, "cancelled")


async def test_only_confirmed_bookings_can_be_cancelled(
    jatra_processes_running: Stack, client: Client, make_passengers: MakePassengers, settings: Settings
) -> None:
    [owner] = await make_passengers(1)
    await set_faults(settings, latency_ms=3000)
    try:
        booked = await book(client, owner)
        response = await client.post(f"/api/v1/bookings/{booked['booking_id']}/cancel", headers=owner.headers)
        assert response.status_code == 409 and "confirmed" in response.json()["detail"]
    finally:
        await set_faults(settings, latency_ms=0)
