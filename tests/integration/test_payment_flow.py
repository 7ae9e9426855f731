"""The whole payment path with the real processes: outbox relay, RabbitMQ, payment worker, provider."""

from __future__ import annotations

import asyncio
import os
import signal
import uuid

import aio_pika
import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind
from sqlalchemy import func, select

from jatra.db.bookings import Booking, ProviderCharge
from jatra.db.inventory import SeatSale
from jatra.infra import topology
from jatra.infra.db import create_engine, session_factory
from jatra.inventory.sales import record_sale
from jatra.inventory.segments import Segment
from jatra.settings import Settings
from jatra.stack.manager import Stack
from tests.fixtures.accounts import MakePassengers, Passenger
from tests.fixtures.provider import set_faults
from tests.integration.helpers import eventually
from tests.integration.payflow import (
    RIDER,
    book,
    charges_for,
    final_state,
    hold_for,
    log_lines,
    worker_metric,
)

pytestmark = [pytest.mark.integration, pytest.mark.slow]
Client = AsyncTestClient[Litestar]
DEAD_LETTERED = 'jatra_amqp_consumed_total{outcome="dead_letter",queue="payments.requests"}'


async def test_a_booking_is_paid_confirmed_and_its_trace_crosses_the_broker(
    healthy_provider: Stack,
    client: Client,
    passenger: Passenger,
    settings: Settings,
    spans: InMemorySpanExporter,
) -> None:
    spans.clear()
    booked = await book(client, passenger, seats=2)
    done = await final_state(client, passenger, booked["booking_id"])
    assert done["status"] == "CONFIRMED" and done["ticket_number"].startswith("JT")
    assert await charges_for(settings, booked["booking_id"]) == ["CAPTURED"]
    seat_map = (
        await client.get(f"/api/v1/journeys/{booked['journey_id']}/seats", params={"from": "DA", "to": "CGP"})
    ).json()
    assert {s["status"] for s in seat_map["seats"] if s["seat_id"] in booked["seats"]} == {"sold"}
    engine = create_engine(settings, admin=True)
    async with session_factory(engine)() as session:
        sold = await session.scalar(
            select(func.count()).where(SeatSale.booking_id == uuid.UUID(booked["booking_id"]))
        )
    await engine.dispose()
    assert sold == 2

    [post] = [
        s
        for s in spans.get_finished_spans()
        if s.kind == SpanKind.SERVER and s.name == "POST /api/v1/bookings"
    ]
    trace_id = format(post.context.trace_id, "032x")
    for _ in range(100):  # log lines are written in batches, within 0.1 s
        confirmed = [
            line
            for line in log_lines(settings, "payments")
            if line.get("message") == "booking.confirmed" and line.get("booking_id") == booked["booking_id"]
        ]
        if confirmed:
            break
        await asyncio.sleep(0.1)
    assert (
        confirmed and confirmed[0]["trace"]["id"] == trace_id
    )  # the worker's log line sits in the request's trace
    # ... and on into the notifications worker, through the event the payment worker wrote to the outbox.
    for _ in range(100):
        sent = [
            line
            for line in log_lines(settings, "notifications")
            if line.get("message") == "notification.sent" and line.get("trace", {}).get("id") == trace_id
        ]
        if sent:
            break
        await asyncio.sleep(0.1)
    assert sent, "no notification log line in the booking's trace"


async def test_twenty_identical_requests_one_booking_one_charge(
    healthy_provider: Stack, client: Client, passenger: Passenger, settings: Settings
) -> None:
    hold = await hold_for(client, passenger)
    body = {"hold_id": hold["hold_id"], "passengers": [RIDER], "payment_method": "nagad"}
    headers = {**passenger.headers, "Idempotency-Key": str(uuid.uuid4())}
    answers = await asyncio.gather(
        *(client.post("/api/v1/bookings", json=body, headers=headers) for _ in range(20))
    )
    booking_ids = {a.json()["booking_id"] for a in answers if a.status_code == 202}
    assert len(booking_ids) == 1 and {a.status_code for a in answers} <= {202, 409}
    [booking_id] = booking_ids
    assert (await final_state(client, passenger, booking_id))["status"] == "CONFIRMED"
    engine = create_engine(settings, admin=True)
    async with session_factory(engine)() as session:
        bookings_of_hold = (
            await session.scalars(select(Booking.id).where(Booking.hold_id == uuid.UUID(hold["hold_id"])))
        ).all()
        charges = await session.scalar(
            select(func.count()).where(ProviderCharge.idempotency_key.in_([str(b) for b in bookings_of_hold]))
        )
    await engine.dispose()
    assert len(bookings_of_hold) == 1 and charges == 1


async def test_poison_messages_land_in_the_dead_letter_queue(
    healthy_provider: Stack, settings: Settings
) -> None:
    connection = await aio_pika.connect_robust(settings.amqp)
    async with connection:
        channel = await connection.channel()
        exchanges = await topology.declare(channel)
        dead = await channel.get_queue(topology.dead_letter_queue(topology.PAYMENT_REQUESTS))
        marker = str(uuid.uuid4())
        await exchanges[topology.PAYMENTS].publish(
            aio_pika.Message(body=b"{not json", message_id=marker), routing_key="payment.requested"
        )
        found = None
        for _ in range(100):
            message = await dead.get(no_ack=False, fail=False)
            if message is None:
                await asyncio.sleep(0.1)
                continue
            await message.ack()
            if message.message_id == marker:
                found = message
                break
    assert found is not None, "the poison message never reached payments.requests.dead"
    assert "not a payment request" in str((found.headers or {})["x-jatra-reason"])


async def test_provider_outage_opens_the_breaker_and_recovery_closes_it(
    healthy_provider: Stack, client: Client, make_passengers: MakePassengers, settings: Settings
) -> None:
    riders = await make_passengers(4)
    dead_before = await worker_metric(settings, "payments", DEAD_LETTERED)
    await set_faults(settings, outage=True)
    failed = await asyncio.gather(*(book(client, who) for who in riders[:3]))
    results = [
        await final_state(client, who, b["booking_id"]) for who, b in zip(riders, failed, strict=False)
    ]
    assert {r["status"] for r in results} == {"PAYMENT_FAILED"}
    assert all("unavailable" in (r["reason"] or "") for r in results)
    dead_after = await worker_metric(settings, "payments", DEAD_LETTERED)
    assert dead_after >= dead_before + 3  # each given-up request is in the DLQ with its reason
    assert (
        await worker_metric(
            settings,
            "payments",
            'jatra_circuit_breaker_transitions_total{target="payment-provider",to_state="opened"}',
        )
        >= 1
    )
    assert (
        await worker_metric(settings, "payments", 'jatra_payments_attempts_total{outcome="short_circuited"}')
        >= 1
    )
    # Failed bookings freed their seats.
    for b in failed:
        seat_map = (
            await client.get(f"/api/v1/journeys/{b['journey_id']}/seats", params={"from": "DA", "to": "CGP"})
        ).json()
        assert {s["status"] for s in seat_map["seats"] if s["seat_id"] in b["seats"]} == {"free"}

    await set_faults(settings, outage=False)
    # no wait for the breaker's timer: the payment's retries (4 s budget) outlast its reset (1 s)
    recovered = await book(client, riders[3])
    assert (await final_state(client, riders[3], recovered["booking_id"]))["status"] == "CONFIRMED"
    assert (
        await worker_metric(settings, "payments", 'jatra_circuit_breaker_state{target="payment-provider"}')
        == 0
    )


async def test_worker_killed_after_the_charge_confirms_once_after_restart(
    healthy_provider: Stack, client: Client, passenger: Passenger, settings: Settings
) -> None:
    await set_faults(settings, latency_after_capture_ms=4000)
    booked = await book(client, passenger)
    for _ in range(100):  # wait until the provider has taken the money
        if await charges_for(settings, booked["booking_id"]):
            break
        await asyncio.sleep(0.05)
    assert await charges_for(settings, booked["booking_id"]) == ["CAPTURED"]
    [worker] = [r for r in healthy_provider.status() if r.name == "payments"]
    os.kill(worker.pids[0], signal.SIGKILL)  # mid-call: the charge is done, the answer never arrives
    await set_faults(settings, latency_after_capture_ms=0)
    # supervisord brings the worker back, as an orchestrator would; nobody runs `jatra up`
    done = await final_state(client, passenger, booked["booking_id"], within_s=60)
    assert done["status"] == "CONFIRMED"
    assert await charges_for(settings, booked["booking_id"]) == ["CAPTURED"]  # charged exactly once


async def test_seats_sold_to_someone_else_while_paying_refund_the_capture(
    healthy_provider: Stack, client: Client, passenger: Passenger, settings: Settings
) -> None:
    """The capture succeeds but the seats went to another sale in the meantime (Postgres refuses this
    one): the booking fails with the reason and the money goes back at once."""
    # captured; every answer comes after the client stopped waiting (1 s in tests), so the worker learns of
    # the capture only once its retries are spent (4 s): time enough for the sale below, on any machine
    await set_faults(settings, latency_after_capture_ms=1500)
    booked = await book(client, passenger)

    async def captured() -> bool:
        return await charges_for(settings, booked["booking_id"]) == ["CAPTURED"]

    await eventually(captured, 10, "the provider taking the money")
    engine = create_engine(settings, admin=True)
    async with session_factory(engine)() as session:  # meanwhile the seats are sold to someone else
        booking = await session.get(Booking, uuid.UUID(booked["booking_id"]))
        assert booking is not None
        await record_sale(session, booking.journey_id, booking.seat_ids,
                          Segment(booking.from_seq, booking.to_seq), None)  # fmt: skip
        await session.commit()
    await engine.dispose()
    done = await final_state(client, passenger, booked["booking_id"])
    assert done["status"] == "PAYMENT_FAILED" and "sold to someone else" in done["reason"]

    async def refunded() -> bool:
        return await charges_for(settings, booked["booking_id"]) == ["REFUNDED"]

    await eventually(refunded, 10, "the capture refunded")


async def test_a_capture_whose_answers_are_lost_is_found_and_confirmed(
    healthy_provider: Stack, client: Client, passenger: Passenger, settings: Settings
) -> None:
    """Every charge attempt is carried out but answers later than the client waits (1 s in tests): the
    worker must not fail a booking whose money was taken. Once its retries are spent it asks the provider,
    finds the capture, and confirms."""
    await set_faults(settings, latency_after_capture_ms=1500)
    booked = await book(client, passenger)
    done = await final_state(client, passenger, booked["booking_id"], within_s=60)
    assert done["status"] == "CONFIRMED", done
    assert await charges_for(settings, booked["booking_id"]) == ["CAPTURED"]  # once
