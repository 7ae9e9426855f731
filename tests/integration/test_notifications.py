"""The notifications worker texts and e-mails the passenger, once per event."""

from __future__ import annotations

import asyncio
import json
import socket
import time
import uuid
from pathlib import Path

import aio_pika
import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from purgatory.domain.model import OpenedState
from sqlalchemy import select

from jatra.db.bookings import OutboxMessage
from jatra.infra import topology
from jatra.infra.channels import ChannelError, MailboxChannel, SmtpChannel
from jatra.infra.db import create_engine, session_factory
from jatra.infra.resources import open_resources
from jatra.notifications.worker import NotificationWorker
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


async def an_event(settings: Settings, booking_id: str) -> aio_pika.abc.AbstractIncomingMessage:
    """A ``booking.confirmed`` event of the booking as RabbitMQ delivers it, with a message id of its own,
    through an exchange and queue of this test's (the stack's worker never sees it)."""
    connection = await aio_pika.connect(settings.amqp)
    async with connection:
        channel = await connection.channel()
        name = f"test.events.{uuid.uuid4().hex}"
        exchange = await channel.declare_exchange(name, "topic", auto_delete=True)
        queue = await channel.declare_queue(exclusive=True)
        await queue.bind(exchange, routing_key="booking.#")
        body = json.dumps({"booking_id": booking_id}).encode()
        await exchange.publish(aio_pika.Message(body, message_id=str(uuid.uuid4())), "booking.confirmed")
        for _ in range(50):
            if (message := await queue.get(no_ack=True, fail=False)) is not None:
                return message
            await asyncio.sleep(0.1)
    raise AssertionError("the event did not come back from RabbitMQ")


@pytest.mark.parametrize("down", ["email", "sms"])
async def test_a_channel_that_failed_is_tried_again_and_one_that_sent_is_not(
    jatra_processes_running: Stack,
    client: Client,
    make_passengers: MakePassengers,
    settings: Settings,
    down: str,
) -> None:
    """One channel fails for good (the mail server refuses the e-mail, or the texts cannot be written), so
    the event fails and the consumer puts it back. Delivered again, it sends what was not sent: the text
    sent before is not sent twice, and the e-mail after a failed text is not lost."""
    await set_faults(settings, outage=False, decline_rate=0.0, latency_ms=0, latency_after_capture_ms=0)
    [rider] = await make_passengers(1)
    email = f"again-{uuid.uuid4().hex[:8]}@example.com"
    booking_id = await book_with_email(client, rider, email)
    assert (await final_state(client, rider, booking_id))["status"] == "CONFIRMED"
    assert len(await messages_for(settings, rider.phone, "confirmed")) == 1  # the stack's own worker's
    assert len(await messages_for(settings, email, "confirmed")) == 1
    event = await an_event(settings, booking_id)
    with socket.socket() as unused:  # a port nothing listens on: the mail server is down
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]
    failing = {  # the real channels, failing for real
        "email": SmtpChannel("127.0.0.1", port, settings.smtp_sender),
        "sms": MailboxChannel(Path("/dev/null/mailbox")),  # not a directory: every write fails
    }
    async with open_resources(settings, "notifications-test", {"db", "redis"}, db_pool=2) as res:
        worker = NotificationWorker(res)
        worker.channels[down] = failing[down]
        with pytest.raises((ChannelError, OSError, OpenedState)):  # its retries spent (or its breaker open)
            await worker.handle(event)
        texted = 2 if down == "email" else 1  # the texts go first: a failed text stops the event there
        assert len(await messages_for(settings, rider.phone, "confirmed", within_s=0)) == texted
        assert len(await messages_for(settings, email, "confirmed", within_s=0)) == 1

        # the same event again, the channel back, in a worker whose breakers have not seen the failures
        # (as another worker process that the redelivery may reach)
        await NotificationWorker(res).handle(event)
    assert len(await messages_for(settings, rider.phone, "confirmed", within_s=0)) == 2  # once each
    assert len(await messages_for(settings, email, "confirmed", within_s=0)) == 2
