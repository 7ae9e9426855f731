"""The RabbitMQ topology the README promises, read back from the broker itself (management API): quorum
queues with a dead-letter exchange and a delivery limit of 5, a dead-letter queue for each, and publisher
confirms on the outbox relay's channel."""

from __future__ import annotations

import asyncio
import uuid
from urllib.parse import quote

import aio_pika
import httpx
import pytest

from jatra.infra import topology
from jatra.settings import Settings
from jatra.stack.manager import Stack
from tests.integration.helpers import eventually

pytestmark = pytest.mark.integration


async def management(settings: Settings, path: str) -> object:
    url = f"http://127.0.0.1:{settings.ports.rabbitmq_management}/api{path}"
    async with httpx.AsyncClient(auth=("guest", "guest"), timeout=10) as http:
        response = await http.get(url)
        response.raise_for_status()
        return response.json()


async def test_every_queue_is_a_quorum_queue_with_a_dead_letter_queue_and_a_delivery_limit(
    jatra_processes_running: Stack, settings: Settings
) -> None:
    queues = {q["name"]: q for q in await management(settings, "/queues/%2F")}  # type: ignore[union-attr]
    for name in (topology.PAYMENT_REQUESTS, topology.NOTIFICATIONS):
        queue = queues[name]
        assert queue["type"] == "quorum" and queue["durable"] is True
        assert queue["arguments"]["x-delivery-limit"] == 5
        assert queue["arguments"]["x-dead-letter-exchange"] == topology.DLX
        dead = queues[topology.dead_letter_queue(name)]
        assert dead["type"] == "quorum"
    bindings = await management(settings, f"/exchanges/%2F/{topology.DLX}/bindings/source")
    assert {b["destination"] for b in bindings} >= {  # type: ignore[union-attr]
        "payments.requests.dead",
        "notifications.dead",
    }


async def test_the_outbox_relay_publishes_with_confirms(
    jatra_processes_running: Stack, settings: Settings
) -> None:
    relay: list[str] = []

    async def listed() -> bool:
        """The management API lists a connection once its statistics were collected (every 5 s): right
        after the stack started, the relay's may not be listed yet."""
        connections = await management(settings, "/connections")
        relay[:] = [
            c["name"] for c in connections  # type: ignore[union-attr]
            if c["client_properties"].get("connection_name") == "jatra-outbox"
        ]  # fmt: skip
        return bool(relay)

    await eventually(listed, 30, "the outbox relay's broker connection is listed")
    channels = await management(settings, f"/connections/{quote(relay[0], safe='')}/channels")
    assert channels and all(c["confirm"] is True for c in channels)  # type: ignore[union-attr]


async def test_an_event_the_notifications_worker_can_never_handle_ends_in_its_dead_letter_queue(
    jatra_processes_running: Stack, settings: Settings
) -> None:
    """Redelivered up to the delivery limit (5), then dead-lettered by the broker: never lost, never loops."""
    connection = await aio_pika.connect_robust(settings.amqp)
    async with connection:
        channel = await connection.channel()
        exchanges = await topology.declare(channel)
        dead = await channel.get_queue(topology.dead_letter_queue(topology.NOTIFICATIONS))
        marker = str(uuid.uuid4())
        poison = aio_pika.Message(body=b"{not json", message_id=marker)
        await exchanges[topology.EVENTS].publish(poison, routing_key="booking.confirmed")
        found = None
        deadline = asyncio.get_running_loop().time() + 60
        while found is None and asyncio.get_running_loop().time() < deadline:
            message = await dead.get(no_ack=False, fail=False)
            if message is None:
                await asyncio.sleep(0.2)
                continue
            await message.ack()
            if message.message_id == marker:
                found = message
    assert found is not None, "the poison event never reached notifications.dead"
    [death] = (found.headers or {})["x-death"]  # type: ignore[index]
    assert death["reason"] == "delivery_limit" and death["queue"] == topology.NOTIFICATIONS  # type: ignore[index]
