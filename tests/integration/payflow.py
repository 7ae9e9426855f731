"""Helpers for tests of the booking -> outbox -> RabbitMQ -> payment worker -> provider flow."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from pathlib import Path
from typing import Any

import httpx

from jatra.settings import Settings
from tests.fixtures.accounts import Passenger
from tests.integration.helpers import a_journey, free_seats

FINAL = {"CONFIRMED", "PAYMENT_FAILED", "EXPIRED"}
RIDER = {"name": "Karim", "age": 40, "gender": "male"}


async def book(client: Any, who: Passenger, seats: int = 1, key: str | None = None) -> dict[str, Any]:
    journey = await a_journey(client, "DA", "CGP", days_ahead=5)
    chosen = await free_seats(client, journey, "DA", "CGP", seats)
    hold = await client.post(
        "/api/v1/holds",
        json={"journey_id": journey, "from": "DA", "to": "CGP", "seats": chosen},
        headers=who.headers,
    )
    assert hold.status_code == 201, hold.text
    body = {"hold_id": hold.json()["hold_id"], "passengers": [RIDER] * seats, "payment_method": "bkash"}
    response = await client.post(
        "/api/v1/bookings", json=body, headers={**who.headers, "Idempotency-Key": key or str(uuid.uuid4())}
    )
    assert response.status_code == 202, response.text
    booked: dict[str, Any] = response.json()
    booked["journey_id"], booked["seats"] = journey, chosen
    return booked


async def final_state(client: Any, who: Passenger, booking_id: str, within_s: float = 30) -> dict[str, Any]:
    deadline = time.monotonic() + within_s
    while True:
        body: dict[str, Any] = (
            await client.get(f"/api/v1/bookings/{booking_id}", headers=who.headers)
        ).json()
        if body["status"] in FINAL or time.monotonic() > deadline:
            return body
        await asyncio.sleep(0.1)


async def set_faults(settings: Settings, **faults: object) -> None:
    async with httpx.AsyncClient(base_url=settings.provider) as http:
        (await http.put("/faults", json=faults)).raise_for_status()


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
