"""The notifications worker texts and e-mails the passenger, once per event."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from pathlib import Path

import aio_pika
import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlalchemy import select

from jatra.db.bookings import OutboxMessage
from jatra.infra import topology
from jatra.infra.channels import MailboxChannel
from jatra.infra.db import create_engine, session_factory
from jatra.settings import Settings
from jatra.stack.manager import Stack
from tests.fixtures.accounts import MakePassengers
from tests.fixtures.provider import set_faults
from tests.integration.helpers import a_journey, free_seats
from tests.integration.payflow import RIDER, final_state, worker_metric

pytestmark = [pytest.mark.integration, pytest.mark.slow]
Client = AsyncTestClient[Litestar]


async def messages_for(settings: Settings, to: str, kind: str, within_s: float = 15) -> list[dict[str, str]]:
    deadline = time.monotonic() + within_s
    while True:
        found = [m for m in MailboxChannel(settings.mailbox_dir).read(to) if m["kind"] == kind]
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


async def replay_event(settings: Settings, booking_id: str, routing_key: str, times: int = 1) -> None:
    """Publish a booking's event again as the outbox first sent it (same message id), as RabbitMQ's
    redelivery or a replay from the dead-letter queue does."""
    engine = create_engine(settings, admin=True)
    async with session_factory(engine)() as session:
        [event] = (
            await session.scalars(
                select(OutboxMessage).where(
                    OutboxMessage.routing_key == routing_key,
                    OutboxMessage.payload["booking_id"].astext == booking_id,
                )
            )
        ).all()
    await engine.dispose()
    connection = await aio_pika.connect(settings.amqp)
    async with connection:
        channel = await connection.channel(publisher_confirms=True)
        exchange = await channel.get_exchange(topology.EVENTS)
        again = aio_pika.Message(json.dumps(event.payload).encode(), message_id=str(event.message_id),
                                 content_type="application/json")  # fmt: skip
        for _ in range(times):
            await exchange.publish(again, routing_key=routing_key)


async def test_an_event_delivered_twice_by_rabbitmq_texts_once(
    jatra_processes_running: Stack, client: Client, make_passengers: MakePassengers, settings: Settings
) -> None:
    """RabbitMQ delivers at least once: the same event (same message id) arriving again sends nothing."""
    await set_faults(settings, outage=False, decline_rate=0.0, latency_ms=0, latency_after_capture_ms=0)
    [rider] = await make_passengers(1)
    booking_id = await book_with_email(client, rider, f"twice-{uuid.uuid4().hex[:8]}@example.com")
    assert (await final_state(client, rider, booking_id))["status"] == "CONFIRMED"
    assert len(await messages_for(settings, rider.phone, "confirmed")) == 1
    duplicates = 'jatra_notifications_sent_total{channel="sms",outcome="duplicate"}'
    before = await worker_metric(settings, "notifications", duplicates)
    await replay_event(settings, booking_id, "booking.confirmed", times=2)
    for _ in range(150):  # both deliveries consumed, and each recognised as already sent
        if await worker_metric(settings, "notifications", duplicates) >= before + 2:
            break
        await asyncio.sleep(0.1)
    else:
        pytest.fail("the notifications worker did not see the redeliveries")
    assert len(await messages_for(settings, rider.phone, "confirmed", within_s=0)) == 1
