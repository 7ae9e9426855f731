"""Cancelling a confirmed booking: refund by the rule, seats back on sale, REFUNDED after the provider."""

from __future__ import annotations

import asyncio
import datetime as dt
import math
import random
import time
import uuid
from typing import Any

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from sqlalchemy import select, text

from jatra.db.bookings import Booking, ProviderCharge
from jatra.infra.db import create_engine, session_factory
from jatra.inventory.holds import HoldStore
from jatra.settings import Settings
from jatra.stack.manager import Stack
from jatra.tickets import cache
from tests.fixtures.accounts import MakePassengers, Passenger
from tests.fixtures.provider import set_faults
from tests.integration.helpers import eventually, free_seats, patiently
from tests.integration.payflow import RIDER, book, final_state, worker_metric
from tests.integration.test_notifications import messages_for, replay_event

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
    assert await unsell_pending(settings, booked["booking_id"]) is False  # the request put them back itself


async def test_a_cancellation_redis_fails_to_free_is_answered_and_freed_by_the_reaper(
    jatra_processes_running: Stack,
    client: Client,
    make_passengers: MakePassengers,
    settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Redis fails after the cancellation committed: the passenger is told it is cancelled (it is; a 503
    would send them to a retry that answers 409), and the reaper puts the seats back on sale, which the
    cancellation's own call did not (they stayed sold in Redis, no hold could take them)."""
    await set_faults(settings, outage=False, decline_rate=0.0, latency_ms=0, latency_after_capture_ms=0)
    [owner] = await make_passengers(1)
    booked = await book(client, owner, seats=2)
    assert (await final_state(client, owner, booked["booking_id"]))["status"] == "CONFIRMED"

    async def unreachable(*_: object) -> None:
        raise RedisConnectionError("Connection refused")

    monkeypatch.setattr(HoldStore, "unmark_sold", unreachable)
    cancelled = await client.post(f"/api/v1/bookings/{booked['booking_id']}/cancel", headers=owner.headers)
    assert cancelled.status_code == 200 and cancelled.json()["status"] == "CANCELLED", cancelled.text
    seats_url = f"/api/v1/journeys/{booked['journey_id']}/seats"

    async def freed() -> bool:  # by the stack's reaper worker, a process of its own
        seat_map = (await client.get(seats_url, params={"from": "DA", "to": "CGP"})).json()
        return {s["status"] for s in seat_map["seats"] if s["seat_id"] in booked["seats"]} == {"free"}

    await eventually(freed, 45, "the cancelled seats back on sale")  # a reaper pass is 15 s apart

    async def repaired() -> bool:  # the flag the cancellation committed, cleared by the reaper
        return await unsell_pending(settings, booked["booking_id"]) is False

    await eventually(repaired, 30, "the reaper's repair recorded")
    body = {"journey_id": booked["journey_id"], "from": "DA", "to": "CGP", "seats": booked["seats"]}
    held = await client.post("/api/v1/holds", json=body, headers=owner.headers)
    assert held.status_code == 201, held.text


async def test_a_cancellation_on_a_journey_being_resynced_is_left_to_the_reaper(
    jatra_processes_running: Stack,
    client: Client,
    make_passengers: MakePassengers,
    settings: Settings,
    redis: Redis,
) -> None:
    """While Redis is given a journey's sales back (no synced marker: jatra.inventory.resync), the reaper
    may write a sale it read before a cancellation after the cancellation freed it, and sell its legs again.
    So the cancellation's own call frees nothing then: it stays flagged, and the reaper's repair, after its
    resync, puts the seats back on sale."""
    await set_faults(settings, outage=False, decline_rate=0.0, latency_ms=0, latency_after_capture_ms=0)
    owner, other = await make_passengers(2)
    booked = await book(client, owner, seats=2)
    assert (await final_state(client, owner, booked["booking_id"]))["status"] == "CONFIRMED"
    store = HoldStore(redis)
    journey = booked["journey_id"]
    await redis.delete(store.synced_key(journey))  # as while the reaper restores it
    cancelled = await client.post(f"/api/v1/bookings/{booked['booking_id']}/cancel", headers=owner.headers)
    assert cancelled.status_code == 200 and cancelled.json()["status"] == "CANCELLED", cancelled.text
    assert await unsell_pending(settings, booked["booking_id"]) is True  # left to the reaper
    sold = await redis.hmget(store.sold_key(journey), [str(s) for s in booked["seats"]])
    assert all(mask is not None and int(mask) != 0 for mask in sold)  # untouched by the request

    async def repaired() -> bool:  # the reaper's repair of flagged cancellations needs no marker
        return await unsell_pending(settings, booked["booking_id"]) is False

    await eventually(repaired, 45, "the reaper's repair recorded")  # passes are 15 s apart, grace 10 s
    # the hold is refused (seats-resyncing) and asks for the journey, restored at the reaper's next pass
    body = {"journey_id": journey, "from": "DA", "to": "CGP", "seats": booked["seats"]}
    held = await patiently(lambda: client.post("/api/v1/holds", json=body, headers=other.headers))
    assert held.status_code == 201, held.text
    assert await redis.exists(store.synced_key(journey))


async def unsell_pending(settings: Settings, booking_id: str) -> bool | None:
    engine = create_engine(settings, admin=True)
    try:
        async with session_factory(engine)() as session:
            return await session.scalar(
                select(Booking.unsell_pending).where(Booking.id == uuid.UUID(booking_id))
            )
    finally:
        await engine.dispose()


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


STOPS = "SELECT station_code FROM train_stops WHERE train_number = :t ORDER BY seq LIMIT 2"
NEW_JOURNEY = (
    "INSERT INTO journeys (train_number, service_date, departs_at) VALUES (:t, :d, :at) RETURNING id"
)


async def journey_departing_in(settings: Settings, delta: dt.timedelta) -> tuple[int, str, str]:
    """A journey of its own for this test, leaving its first station ``delta`` from now (on a service date
    no timetable uses), and that station and the next."""
    engine = create_engine(settings, admin=True)
    async with engine.begin() as conn:
        train = (await conn.execute(text("SELECT number FROM trains ORDER BY random() LIMIT 1"))).scalar_one()
        stops = (await conn.execute(text(STOPS), {"t": train})).scalars().all()
        used = "SELECT service_date FROM journeys WHERE train_number = :t"
        taken = set((await conn.execute(text(used), {"t": train})).scalars().all())
        day = dt.date(2040, 1, 1) + dt.timedelta(days=random.randrange(3650))
        while day in taken:
            day += dt.timedelta(days=1)
        values = {"t": train, "d": day, "at": dt.datetime.now(dt.UTC) + delta}
        journey = (await conn.execute(text(NEW_JOURNEY), values)).scalar_one()
    await engine.dispose()
    # new, so without a sale: Redis knows all it has (the reaper's hourly sweep would say so, or the first
    # hold's ask; this test does not wait for either)
    redis = Redis.from_url(settings.redis)
    try:
        await HoldStore(redis).resync(journey, {}, int(time.time() * 1000) + 3_600_000)
    finally:
        await redis.aclose()
    return journey, stops[0], stops[1]


async def confirmed_on(client: Client, who: Passenger, trip: tuple[int, str, str]) -> dict[str, Any]:
    journey, origin, destination = trip
    [seat] = await free_seats(client, journey, origin, destination, 1)
    body = {"journey_id": journey, "from": origin, "to": destination, "seats": [seat]}
    hold = await client.post("/api/v1/holds", json=body, headers=who.headers)
    assert hold.status_code == 201, hold.text
    booking = {"hold_id": hold.json()["hold_id"], "passengers": [RIDER], "payment_method": "nagad"}
    headers = {**who.headers, "Idempotency-Key": str(uuid.uuid4())}
    booked = await client.post("/api/v1/bookings", json=booking, headers=headers)
    assert booked.status_code == 202, booked.text
    done = await final_state(client, who, booked.json()["booking_id"])
    assert done["status"] == "CONFIRMED", done
    return done


@pytest.mark.parametrize(
    ("ahead", "share"),
    [
        (dt.timedelta(hours=72), 0.90),
        (dt.timedelta(hours=30), 0.75),
        (dt.timedelta(hours=12), 0.50),
        (dt.timedelta(hours=2), 0.0),
    ],
    ids=["48h-or-more", "24-48h", "6-24h", "under-6h"],
)
async def test_each_refund_tier_through_the_api(
    jatra_processes_running: Stack,
    client: Client,
    make_passengers: MakePassengers,
    settings: Settings,
    ahead: dt.timedelta,
    share: float,
) -> None:
    await set_faults(settings, outage=False, decline_rate=0.0, latency_ms=0, latency_after_capture_ms=0)
    [owner] = await make_passengers(1)
    done = await confirmed_on(client, owner, await journey_departing_in(settings, ahead))
    cancelled = await client.post(f"/api/v1/bookings/{done['booking_id']}/cancel", headers=owner.headers)
    assert cancelled.status_code == 200, cancelled.text
    assert cancelled.json()["refund_amount"] == math.floor(done["amount"] * share)


async def test_cancelling_after_departure_is_refused(
    jatra_processes_running: Stack, client: Client, make_passengers: MakePassengers, settings: Settings
) -> None:
    await set_faults(settings, outage=False, decline_rate=0.0, latency_ms=0, latency_after_capture_ms=0)
    [owner] = await make_passengers(1)
    leaves_at = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=8)
    left = await confirmed_on(client, owner, await journey_departing_in(settings, dt.timedelta(seconds=8)))

    async def departed() -> bool:
        return dt.datetime.now(dt.UTC) > leaves_at + dt.timedelta(seconds=1)

    await eventually(departed, 30, "the train leaving")
    refused = await client.post(f"/api/v1/bookings/{left['booking_id']}/cancel", headers=owner.headers)
    assert refused.status_code == 409 and "already left" in refused.json()["detail"]


async def test_a_cancelled_ticket_leaves_the_cache(
    jatra_processes_running: Stack,
    client: Client,
    make_passengers: MakePassengers,
    redis: Redis,
    settings: Settings,
) -> None:
    """Nobody downloads a void ticket: the rendered PDF is dropped when its booking is cancelled, and
    nothing stores it again."""
    [owner] = await make_passengers(1)
    kept = await book(client, owner)
    assert (await final_state(client, owner, kept["booking_id"]))["status"] == "CONFIRMED"
    url = f"/api/v1/bookings/{kept['booking_id']}"
    assert (await client.get(f"{url}/ticket.pdf", headers=owner.headers)).status_code == 200
    assert await redis.exists(cache.entry_key(kept["booking_id"]))
    assert (await client.post(f"{url}/cancel", headers=owner.headers)).status_code == 200
    assert not await redis.exists(cache.entry_key(kept["booking_id"]))
    assert (await client.get(f"{url}/ticket.pdf", headers=owner.headers)).status_code == 409
    # a render that was under way when the booking was cancelled cannot store it
    assert not await cache.store(redis, kept["booking_id"], str(owner.user_id), b"%PDF-late")
    assert (await client.get(f"{url}/ticket.pdf", headers=owner.headers)).status_code == 409
    # the confirmation replayed from the dead-letter queue hours later, when the void marker has lapsed:
    # the worker sees the booking cancelled and renders nothing
    await redis.delete(cache.void_key(kept["booking_id"]))
    duplicates = 'jatra_notifications_sent_total{channel="sms",outcome="duplicate"}'
    before = await worker_metric(settings, "notifications", duplicates)
    await replay_event(settings, kept["booking_id"], "booking.confirmed")

    async def handled() -> bool:
        return await worker_metric(settings, "notifications", duplicates) > before

    await eventually(handled, 15, "the notifications worker handling the replayed confirmation")
    assert not await redis.exists(cache.entry_key(kept["booking_id"]))
    assert (await client.get(f"{url}/ticket.pdf", headers=owner.headers)).status_code == 409
