"""Helpers for tests of the booking -> outbox -> RabbitMQ -> payment worker -> provider flow."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import psycopg
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from jatra.bookings import repository as bookings
from jatra.db.bookings import ProviderCharge
from jatra.db.inventory import Hold
from jatra.infra.db import create_engine, session_factory
from jatra.infra.outbox import Draft
from jatra.infra.pg import Transaction
from jatra.infra.pg_listen import asyncpg_dsn
from jatra.settings import Settings
from tests.fixtures.accounts import MakePassengers, Passenger
from tests.fixtures.provider import set_faults
from tests.integration.helpers import a_journey, free_seats, patiently

FINAL = {"CONFIRMED", "PAYMENT_FAILED", "EXPIRED"}
RIDER = {"name": "Karim", "age": 40, "gender": "male"}


async def hold_for(
    client: Any,
    who: Passenger,
    origin: str = "DA",
    destination: str = "CGP",
    seats: int = 1,
    days_ahead: int = 5,
) -> dict[str, Any]:
    """A fresh hold through the API on a journey running that day; the hold's JSON plus journey and seats."""
    journey = await a_journey(client, origin, destination, days_ahead=days_ahead)
    for _ in range(5):  # passengers booking at once may pick the same free seat: the loser picks again
        chosen = await free_seats(client, journey, origin, destination, seats)
        body = {"journey_id": journey, "from": origin, "to": destination, "seats": chosen}
        response = await patiently(lambda b=body: client.post("/api/v1/holds", json=b, headers=who.headers))
        if response.status_code != 409:
            break
    assert response.status_code == 201, response.text
    hold: dict[str, Any] = response.json()
    hold["journey_id"], hold["seat_ids"] = journey, chosen
    return hold


async def book(client: Any, who: Passenger, seats: int = 1, key: str | None = None) -> dict[str, Any]:
    hold = await hold_for(client, who, seats=seats)
    body = {"hold_id": hold["hold_id"], "passengers": [RIDER] * seats, "payment_method": "bkash"}
    headers = {**who.headers, "Idempotency-Key": key or str(uuid.uuid4())}
    response = await patiently(lambda: client.post("/api/v1/bookings", json=body, headers=headers))
    assert response.status_code == 202, response.text
    booked: dict[str, Any] = response.json()
    booked["journey_id"], booked["seats"] = hold["journey_id"], hold["seat_ids"]
    return booked


async def unpaid_booking(
    client: Any, who: Passenger, engine: AsyncEngine, seats: int = 1
) -> tuple[Hold, uuid.UUID]:
    """A booking made from a fresh hold, as POST /bookings makes it, but whose payment request no worker
    consumes: it stays PAYMENT_PENDING even when the test session runs a payment worker."""
    hold = await hold_for(client, who, seats=seats)
    booking_id = uuid.uuid4()
    async with session_factory(engine)() as session:
        row = await session.get(Hold, uuid.UUID(hold["hold_id"]))
    assert row is not None
    dsn = asyncpg_dsn(engine.url.render_as_string(hide_password=False))
    async with await psycopg.AsyncConnection.connect(dsn) as conn, conn.transaction():
        accepted = await bookings.accept(
            Transaction(conn), booking_id=booking_id, user_id=row.user_id, key=f"unpaid-{booking_id}",
            digest="-", hold_id=row.id, seats=seats, passengers=[RIDER] * seats, method="bkash", email=None,
            payment=Draft("jatra.events", "test.unpaid", uuid.uuid4(), {}),
        )  # fmt: skip
        assert accepted is not None
    return row, booking_id


async def final_state(client: Any, who: Passenger, booking_id: str, within_s: float = 30) -> dict[str, Any]:
    """Poll until the booking is final, as a client would: an answer that is not a 200 (a 503 with
    Retry-After while the machine is saturated, a 408 on a connection the server timed out) is asked again,
    and so is a request that got no answer (many pollers on one client may wait for its pool)."""
    deadline = time.monotonic() + within_s
    while True:
        try:
            response = await client.get(f"/api/v1/bookings/{booking_id}", headers=who.headers)
        except httpx.TransportError as exc:
            if time.monotonic() > deadline:
                raise
            body: dict[str, Any] = {"status": type(exc).__name__}
        else:
            body = (
                response.json() if response.status_code == 200 else {"status": f"HTTP {response.status_code}"}
            )
        if body["status"] in FINAL or time.monotonic() > deadline:
            return body
        await asyncio.sleep(0.1)


async def a_confirmed_booking(settings: Settings, make_passengers: MakePassengers) -> str:
    """A new passenger's booking through the stack's API, the provider healthy: its id, once CONFIRMED."""
    await set_faults(settings, outage=False, decline_rate=0.0, latency_ms=0, latency_after_capture_ms=0)
    [rider] = await make_passengers(1)
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{settings.ports.api}", timeout=30) as http:
        booked = await book(http, rider)
        assert (await final_state(http, rider, booked["booking_id"]))["status"] == "CONFIRMED"
    booking_id: str = booked["booking_id"]
    return booking_id


def log_lines(settings: Settings, process: str) -> list[dict[str, Any]]:
    path = Path(settings.state_dir) / "log" / f"{process}.log"
    lines = []
    for raw in path.read_text().splitlines():
        if raw.startswith("{"):
            try:
                lines.append(json.loads(raw))
            except ValueError:
                continue
    return lines


async def worker_metric(settings: Settings, process: str, line_prefix: str) -> float:
    async with httpx.AsyncClient() as http:
        text = (await http.get(f"http://127.0.0.1:{settings.ports.app(process)}/metrics")).text
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line.startswith(line_prefix))


async def charges_for(settings: Settings, key: str) -> list[str]:
    engine = create_engine(settings, admin=True)
    async with session_factory(engine)() as session:
        rows = (
            await session.scalars(select(ProviderCharge.status).where(ProviderCharge.idempotency_key == key))
        ).all()
    await engine.dispose()
    return list(rows)
