"""The notifications worker texts and e-mails the passenger, once per event."""

from __future__ import annotations

import asyncio
import time
import uuid
from pathlib import Path

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from jatra.infra.channels import Notice, OutboxChannel
from jatra.infra.resources import open_resources
from jatra.notifications.worker import NotificationWorker
from jatra.settings import Settings
from jatra.stack.manager import Stack
from tests.fixtures.accounts import MakePassengers
from tests.integration.helpers import a_journey, free_seats
from tests.integration.payflow import RIDER, final_state, set_faults

pytestmark = [pytest.mark.integration, pytest.mark.slow]
Client = AsyncTestClient[Litestar]


async def messages_for(settings: Settings, to: str, kind: str, within_s: float = 15) -> list[dict[str, str]]:
    deadline = time.monotonic() + within_s
    while True:
        found = [m for m in OutboxChannel(settings.outbox_dir).read(to) if m["kind"] == kind]
        if found or time.monotonic() > deadline:
            return found
        await asyncio.sleep(0.1)


async def book_with_email(client: Client, who: object, email: str) -> str:
    headers = who.headers  # type: ignore[attr-defined]
    journey = await a_journey(client, "DA", "SYT", days_ahead=5)
    seats = await free_seats(client, journey, "DA", "SYT", 1)
    hold = await client.post(
        "/api/v1/holds",
        json={"journey_id": journey, "from": "DA", "to": "SYT", "seats": seats},
        headers=headers,
    )
    body = {
        "hold_id": hold.json()["hold_id"],
        "passengers": [RIDER],
        "payment_method": "card",
        "email": email,
    }
    response = await client.post(
        "/api/v1/bookings", json=body, headers={**headers, "Idempotency-Key": str(uuid.uuid4())}
    )
    assert response.status_code == 202, response.text
    return str(response.json()["booking_id"])


async def test_confirmed_and_failed_bookings_are_notified(
    jatra_processes_running: Stack, client: Client, make_passengers: MakePassengers, settings: Settings
) -> None:
    await set_faults(settings, outage=False, decline_rate=0.0, latency_ms=0, latency_after_capture_ms=0)
    happy, unlucky = await make_passengers(2)
    email = f"rider-{uuid.uuid4().hex[:8]}@example.com"
    booking_id = await book_with_email(client, happy, email)
    done = await final_state(client, happy, booking_id)
    assert done["status"] == "CONFIRMED"
    [sms] = await messages_for(settings, happy.phone, "confirmed")
    assert done["ticket_number"] in sms["body"]
    [mail] = await messages_for(settings, email, "confirmed")
    assert mail["subject"].endswith(done["ticket_number"])
    [pdf] = mail["attachments"]
    assert (await asyncio.to_thread(Path(pdf).read_bytes)).startswith(b"%PDF-")

    await set_faults(settings, decline_rate=1.0)
    try:
        failed_id = await book_with_email(client, unlucky, f"x-{uuid.uuid4().hex[:6]}@example.com")
        assert (await final_state(client, unlucky, failed_id))["status"] == "PAYMENT_FAILED"
        [failed_sms] = await messages_for(settings, unlucky.phone, "payment_failed")
        assert "declined" in failed_sms["body"] and "nothing was charged" in failed_sms["body"]
    finally:
        await set_faults(settings, decline_rate=0.0)


async def test_an_event_handled_twice_sends_once(settings: Settings, stack: Stack) -> None:
    phone = f"+88019{uuid.uuid4().int % 10**8:08d}"
    notice = Notice(phone, "Jatra", "hello", "test")
    async with open_resources(settings, "test-notifications", {"db", "redis"}) as res:
        worker = NotificationWorker(res)
        key = f"{uuid.uuid4()}:sms"
        await worker._send_once(key, "sms", notice)
        await worker._send_once(key, "sms", notice)
    assert len(OutboxChannel(settings.outbox_dir).read(phone)) == 1
