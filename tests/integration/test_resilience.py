"""Nothing accepted is lost: stuck bookings are reconciled, and a broker restart loses no booking."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import uuid
from collections import Counter

import httpx
import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlalchemy import select, update

from jatra.db.bookings import Booking, ProviderCharge
from jatra.db.inventory import Hold
from jatra.infra.resources import Resources, open_resources
from jatra.inventory.holds import HoldStore
from jatra.inventory.sales import record_sale
from jatra.inventory.segments import Segment
from jatra.payments import reconciler, settle
from jatra.payments.client import ChargeResult, ProviderClient
from jatra.payments.reconciler import STUCK
from jatra.payments.worker import PaymentGaveUp, PaymentWorker
from jatra.settings import Settings
from jatra.stack.manager import Stack
from jatra.stack.stores import RabbitMQ
from tests.fixtures.accounts import MakePassengers, Passenger
from tests.fixtures.provider import set_faults
from tests.fixtures.stack import paused
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


async def stuck_booking(
    client: Client, who: Passenger, settings: Settings, charged: bool, minutes_old: int = 10
) -> Booking:
    """A booking in PAYMENT_PROCESSING written straight to Postgres (its payment message lost), ten minutes
    old by default: the reconciler's to settle. Younger than the hold TTL, the reconciler leaves it alone."""
    # the horizon is 7 days (today and 6 more): a day short of its edge, should Dhaka's midnight come between
    hold = await hold_for(client, who, "DA", "SYT", days_ahead=5)
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
        created = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=minutes_old)
        await session.execute(update(Booking).where(Booking.id == booking.id).values(created_at=created))
        if charged:
            session.add(
                ProviderCharge(
                    idempotency_key=str(booking.id), amount=booking.amount, method="bkash", status="CAPTURED"
                )
            )
        await session.commit()
    return booking


async def settled(settings: Settings, ids: list[uuid.UUID], within_s: float = 30) -> dict[uuid.UUID, Booking]:
    """The bookings once none of them is still in payment, waiting on whoever settles them."""
    deadline = asyncio.get_running_loop().time() + within_s
    while True:
        async with open_resources(settings, "test", {"db"}) as res, res.db()() as session:
            rows = {
                b.id: b for b in (await session.scalars(select(Booking).where(Booking.id.in_(ids)))).all()
            }
        if all(b.status not in STUCK for b in rows.values()):
            return rows
        assert asyncio.get_running_loop().time() < deadline, {b.id: b.status for b in rows.values()}
        await asyncio.sleep(0.2)


async def test_the_reconciler_worker_settles_stuck_bookings(
    jatra_processes_running: Stack, client: Client, make_passengers: MakePassengers, settings: Settings
) -> None:
    """Nobody calls the reconciler here: the running worker (every second in tests) finds and settles them."""
    await set_faults(settings, outage=False, decline_rate=0.0, latency_ms=0, latency_after_capture_ms=0)
    actions = 'jatra_payments_reconciliations_total{action="confirmed"}'
    confirmed_before = await worker_metric(settings, "reconciler", actions)
    paid_rider, unpaid_rider = await make_passengers(2)
    paid = await stuck_booking(client, paid_rider, settings, charged=True)
    unpaid = await stuck_booking(client, unpaid_rider, settings, charged=False)
    rows = await settled(settings, [paid.id, unpaid.id])
    assert rows[paid.id].status == "CONFIRMED" and rows[paid.id].ticket_number  # captured money: a ticket
    assert rows[unpaid.id].status == "PAYMENT_FAILED" and "never reached" in (rows[unpaid.id].reason or "")
    assert await worker_metric(settings, "reconciler", actions) >= confirmed_before + 1
    # failed as unpaid only once its key was voided: a charge with it still on its way takes nothing
    assert await charges_for(settings, str(unpaid.id)) == ["VOIDED"]
    client_of_a_late_worker = ProviderClient(settings.provider, 5)
    try:
        late = await client_of_a_late_worker.charge(str(unpaid.id), unpaid.amount, "bkash")
    finally:
        await client_of_a_late_worker.close()
    assert late.status == "VOIDED" and await charges_for(settings, str(unpaid.id)) == ["VOIDED"]


async def test_a_capture_whose_seats_were_sold_meanwhile_is_refunded_by_the_reconciler(
    jatra_processes_running: Stack, client: Client, make_passengers: MakePassengers, settings: Settings
) -> None:
    await set_faults(settings, outage=False, decline_rate=0.0, latency_ms=0, latency_after_capture_ms=0)
    [rider] = await make_passengers(1)
    # made young, so the running reconciler leaves it alone until the sale below is in
    booking = await stuck_booking(client, rider, settings, charged=True, minutes_old=0)
    async with open_resources(settings, "test", {"db"}) as res, res.db()() as session:
        # someone else bought the same seat on the same legs while this payment was stuck
        await record_sale(session, booking.journey_id, booking.seat_ids,
                          Segment(booking.from_seq, booking.to_seq), None)  # fmt: skip
        ten_minutes_ago = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=10)  # now the reconciler's
        await session.execute(
            update(Booking).where(Booking.id == booking.id).values(created_at=ten_minutes_ago)
        )
        await session.commit()
    rows = await settled(settings, [booking.id])
    assert rows[booking.id].status == "PAYMENT_FAILED"
    await refunded(settings, booking.id)  # by the payment worker, from the refund request in the outbox


async def failed(res: Resources, booking_id: uuid.UUID) -> Booking:
    """The booking, which must have ended PAYMENT_FAILED."""
    async with res.db()() as session:
        ended = await session.get(Booking, booking_id)
    assert ended is not None and ended.status == "PAYMENT_FAILED"
    return ended


async def refunded(settings: Settings, booking_id: uuid.UUID) -> None:
    async def done() -> bool:
        return await charges_for(settings, str(booking_id)) == ["REFUNDED"]

    await eventually(done, 30, "the charge refunded")


async def test_a_charge_that_lands_after_the_booking_failed_is_refunded(
    jatra_processes_running: Stack, client: Client, make_passengers: MakePassengers, settings: Settings
) -> None:
    """The provider takes the money for a booking another actor already failed (the charge was in
    flight), and then goes down: the refund is not lost with the call that could not be made. It waits
    in the outbox and the queue, and is made once the provider is back."""
    await set_faults(settings, outage=False, decline_rate=0.0, latency_ms=0, latency_after_capture_ms=0)
    [rider] = await make_passengers(1)
    async with open_resources(settings, "test", {"db", "redis"}) as res:
        # young, so not the running reconciler's: only this worker and the fail below act on it
        booking = await stuck_booking(client, rider, settings, charged=True, minutes_old=0)
        worker = PaymentWorker(res)
        provider_charge = worker.client.charge

        async def charge_while_the_reconciler_fails_it(key: str, amount: int, method: str) -> ChargeResult:
            # the worker has taken the booking and its charge request is on its way: the reconciler fails
            # the booking now, and the provider's answer (CAPTURED) arrives for a booking that is over
            async with res.db()() as session:
                await settle.fail(
                    HoldStore(res.cache()), session=session, booking_id=booking.id, reason="test"
                )
            taken = await provider_charge(key, amount, method)
            await set_faults(settings, outage=True)  # no refund can be made now
            return taken

        worker.client.charge = charge_while_the_reconciler_fails_it  # type: ignore[method-assign]
        try:
            await worker._pay(booking.id)
            await failed(res, booking.id)
            await asyncio.sleep(3)  # the payment worker tries the refund and fails: it stays requested
            assert await charges_for(settings, str(booking.id)) == ["CAPTURED"]
        finally:
            await set_faults(settings, outage=False)
            await worker.client.close()
    await refunded(settings, booking.id)


async def test_a_delivery_that_cannot_void_after_another_started_requests_the_refund(
    jatra_processes_running: Stack, client: Client, make_passengers: MakePassengers, settings: Settings
) -> None:
    """The booking is processing already (another delivery of its request charged, and its answer was lost),
    and now the provider is down for this delivery's whole budget: it fails the booking without a void, so
    it requests the key's refund with the failure, and the money goes back once the provider answers."""
    [rider] = await make_passengers(1)
    async with open_resources(settings, "test", {"db", "redis"}) as res:
        booking = await stuck_booking(client, rider, settings, charged=True, minutes_old=0)
        worker = PaymentWorker(res)
        await set_faults(settings, outage=True)
        try:
            with pytest.raises(PaymentGaveUp):
                await worker._pay(booking.id)
            assert "provider unavailable" in ((await failed(res, booking.id)).reason or "")
        finally:
            await set_faults(settings, outage=False)
            await worker.client.close()
    await refunded(settings, booking.id)


async def test_a_charge_answered_voided_fails_the_booking_as_never_charged(
    jatra_processes_running: Stack, client: Client, make_passengers: MakePassengers, settings: Settings
) -> None:
    """Whoever gave up on the key first voided it (and was stopped before failing the booking): a charge
    that arrives after takes nothing, and the booking fails with the reason a void means."""
    await set_faults(settings, outage=False, decline_rate=0.0, latency_ms=0, latency_after_capture_ms=0)
    [rider] = await make_passengers(1)
    async with open_resources(settings, "test", {"db", "redis"}) as res:
        booking = await stuck_booking(client, rider, settings, charged=False, minutes_old=0)
        worker = PaymentWorker(res)
        try:
            assert (await worker.client.void(str(booking.id))).status == "VOIDED"
            await worker._pay(booking.id)
        finally:
            await worker.client.close()
        assert (await failed(res, booking.id)).reason == settle.NEVER_CHARGED
    assert await charges_for(settings, str(booking.id)) == ["VOIDED"]


async def test_a_redelivered_request_of_a_booking_that_ended_unpaid_requests_the_refund(
    jatra_processes_running: Stack, client: Client, make_passengers: MakePassengers, settings: Settings
) -> None:
    """A worker charged, then died before settling; meanwhile another delivery failed the booking. The
    redelivered request finds it ended without a ticket and requests the key's refund."""
    await set_faults(settings, outage=False, decline_rate=0.0, latency_ms=0, latency_after_capture_ms=0)
    [rider] = await make_passengers(1)
    async with open_resources(settings, "test", {"db", "redis"}) as res:
        booking = await stuck_booking(client, rider, settings, charged=True, minutes_old=0)
        async with res.db()() as session:
            await settle.fail(HoldStore(res.cache()), session=session, booking_id=booking.id, reason="test")
        worker = PaymentWorker(res)
        try:
            await worker._pay(booking.id)  # a first delivery of a finished booking: nothing to do
            assert await charges_for(settings, str(booking.id)) == ["CAPTURED"]
            await worker._pay(booking.id, redelivered=True)
        finally:
            await worker.client.close()
    await refunded(settings, booking.id)


async def broker_ready(settings: Settings, expected: bool) -> bool:
    """Whether the outbox worker's /ready check of RabbitMQ says what ``expected`` says."""
    async with httpx.AsyncClient(timeout=10) as http:
        body = (await http.get(f"http://127.0.0.1:{settings.ports.app('outbox')}/ready")).json()
    return bool(body["checks"]["rabbitmq"]["ok"]) is expected


async def test_a_broker_restart_mid_burst_loses_no_booking(
    jatra_processes_running: Stack, client: Client, make_passengers: MakePassengers, settings: Settings
) -> None:
    await set_faults(settings, outage=False, decline_rate=0.0, latency_ms=0, latency_after_capture_ms=0)
    riders = await make_passengers(24)
    first = await asyncio.gather(*(book(client, who) for who in riders[:12]))
    jatra_processes_running.down(["rabbitmq"])  # bookings keep being accepted: they wait in the outbox
    second = await asyncio.gather(*(book(client, who) for who in riders[12:]))
    await eventually(lambda: broker_ready(settings, False), 30, "the outbox worker reports the broker down")
    jatra_processes_running.up([RabbitMQ()])
    await eventually(lambda: broker_ready(settings, True), 60, "the outbox worker reports the broker back")
    results = await asyncio.gather(
        *(
            final_state(client, who, b["booking_id"], within_s=90)
            for who, b in zip(riders, first + second, strict=True)
        )
    )
    assert Counter(r["status"] for r in results) == {"CONFIRMED": 24}


async def test_a_stuck_booking_that_cannot_be_settled_does_not_hold_up_the_others(
    jatra_processes_running: Stack, client: Client, make_passengers: MakePassengers, settings: Settings
) -> None:
    """The reconciler takes the longest stuck first; one whose settling raises for a reason of its own (here
    its ticket number is already taken, as happened when numbers were 40 bits) is logged and tried again (at
    once when the pass has room), and those after it are settled meanwhile."""
    await set_faults(settings, outage=False, decline_rate=0.0, latency_ms=0, latency_after_capture_ms=0)
    blocked_rider, blocker_rider, paid_rider = await make_passengers(3)
    blocked = await stuck_booking(client, blocked_rider, settings, charged=True, minutes_old=1)
    blocker = await stuck_booking(client, blocker_rider, settings, charged=False, minutes_old=1)
    try:
        async with open_resources(settings, "test", {"db"}) as res, res.db()() as session:
            now = dt.datetime.now(dt.UTC)
            taken = settle.ticket_number(blocked.id)
            await session.execute(
                update(Booking)
                .where(Booking.id == blocker.id)
                .values(ticket_number=taken, created_at=now - dt.timedelta(minutes=30))
            )
            await session.execute(
                update(Booking)
                .where(Booking.id == blocked.id)
                .values(created_at=now - dt.timedelta(minutes=20))
            )
            await session.commit()
        paid = await stuck_booking(client, paid_rider, settings, charged=True)  # ten minutes old, after it
        rows = await settled(settings, [paid.id, blocker.id])
        assert rows[paid.id].status == "CONFIRMED" and rows[blocker.id].status == "PAYMENT_FAILED"
        async with open_resources(settings, "test", {"db"}) as res, res.db()() as session:
            still = await session.get(Booking, blocked.id)
            assert still is not None and still.status == "PAYMENT_PROCESSING"
        failed = [
            e for e in log_lines(settings, "reconciler") if e.get("message") == "payment.reconcile_failed"
        ]
        assert any(e.get("booking_id") == str(blocked.id) for e in failed)
    finally:  # the number freed: the next pass confirms it
        async with open_resources(settings, "test", {"db"}) as res, res.db()() as session:
            await session.execute(update(Booking).where(Booking.id == blocker.id).values(ticket_number=None))
            await session.commit()
    assert (await settled(settings, [blocked.id]))[blocked.id].status == "CONFIRMED"


async def test_bookings_that_cannot_be_settled_are_passed_over_and_do_not_fill_the_window(
    jatra_processes_running: Stack,
    client: Client,
    make_passengers: MakePassengers,
    settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A pass takes the longest stuck first, at most a window of them. A booking whose settling failed is
    passed over for a while, so a window's worth of such bookings cannot keep a paid one after them stuck
    forever. Here the window is one booking, and the unsettleable one is older than the paid one."""
    monkeypatch.setattr(reconciler, "WINDOW", 1)
    await set_faults(settings, outage=False, decline_rate=0.0, latency_ms=0, latency_after_capture_ms=0)
    blocked_rider, holder_rider, paid_rider = await make_passengers(3)
    blocked = await stuck_booking(client, blocked_rider, settings, charged=True, minutes_old=1)
    holder = await stuck_booking(client, holder_rider, settings, charged=False, minutes_old=1)
    paid = await stuck_booking(client, paid_rider, settings, charged=True, minutes_old=1)
    # this test's reconciler takes bookings 30 s old; the running one is stopped meanwhile
    mine = dataclasses.replace(settings, hold_ttl_s=30, reconcile_interval_s=10)  # passed over for 60 s
    passed_over = reconciler.PassedOver()
    try:
        with paused(jatra_processes_running, "reconciler"):
            async with open_resources(mine, "test", {"db", "redis"}) as res:
                async with res.db()() as session:
                    now = dt.datetime.now(dt.UTC)
                    taken = settle.ticket_number(blocked.id)  # held by a failed booking: blocked's
                    await session.execute(  # confirmation breaks the unique ticket number, every time
                        update(Booking)
                        .where(Booking.id == holder.id)
                        .values(ticket_number=taken, status="PAYMENT_FAILED")
                    )
                    for booking, age_s in ((blocked, 90), (paid, 85)):
                        await session.execute(
                            update(Booking)
                            .where(Booking.id == booking.id)
                            .values(created_at=now - dt.timedelta(seconds=age_s))
                        )
                    await session.commit()
                # one booking a pass, the longest stuck first: any older one left by another test, then
                # blocked, then paid
                for _ in range(30):
                    await reconciler.reconcile(res, passed_over)
                    async with res.db()() as session:
                        found = await session.get(Booking, paid.id, populate_existing=True)
                        assert found is not None
                    if found.status == "CONFIRMED":
                        break
                assert found.status == "CONFIRMED"
                assert blocked.id in passed_over.waiting()
                async with res.db()() as session:
                    still = await session.get(Booking, blocked.id)
                    assert still is not None and still.status == "PAYMENT_PROCESSING"
    finally:  # the number freed: the running reconciler confirms it once it is old enough
        async with open_resources(settings, "test", {"db"}) as res, res.db()() as session:
            await session.execute(update(Booking).where(Booking.id == holder.id).values(ticket_number=None))
            await session.commit()
