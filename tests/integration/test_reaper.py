"""The reaper records expiries and lost holds in Postgres and publishes the live-hold gauges."""

from __future__ import annotations

import dataclasses
import datetime as dt
import random
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind
from prometheus_client import REGISTRY
from redis.asyncio import Redis
from sqlalchemy import func, select

from jatra.app import create_app
from jatra.db.catalog import Coach, Journey, Seat
from jatra.db.inventory import Hold, SeatSale
from jatra.infra.resources import open_resources
from jatra.inventory.holds import HoldStore, Refused
from jatra.inventory.sales import record_sale
from jatra.inventory.segments import Segment
from jatra.seats.reaper import SALES_CURSOR, reap, sync_sold_legs
from jatra.settings import Settings
from jatra.stack.manager import Stack
from tests.fixtures.accounts import MakePassengers, Passenger
from tests.fixtures.app import EcsLines
from tests.fixtures.stack import paused
from tests.integration.helpers import a_journey, eventually, free_seats

pytestmark = pytest.mark.integration


@pytest.fixture(autouse=True)
def reaper_worker_paused(stack: Stack) -> Iterator[None]:
    """These tests call the reaper themselves; the reaper worker, if earlier tests started the Jatra
    processes, would race them to the same holds and sales. Pause it, and start it again after."""
    with paused(stack, "reaper"):
        yield


def metric(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


async def test_expired_and_lost_holds_are_reconciled(
    settings: Settings, make_passengers: MakePassengers, redis: Redis
) -> None:
    short = dataclasses.replace(settings, hold_ttl_s=0.5)
    alice, bob = await make_passengers(2)
    async with AsyncTestClient(app=create_app(["all"], short)) as client:
        journey = await a_journey(client)
        seats = await free_seats(client, journey, "DA", "SYT", 2)
        body = {"journey_id": journey, "from": "DA", "to": "SYT", "seats": [seats[0]]}
        expiring = (await client.post("/api/v1/holds", json=body, headers=alice.headers)).json()
    async with AsyncTestClient(app=create_app(["all"], settings)) as client:
        body = {"journey_id": journey, "from": "DA", "to": "SYT", "seats": [seats[1]]}
        lost = (await client.post("/api/v1/holds", json=body, headers=bob.headers)).json()
        seat_class = lost["seats"][0]["class"]
    # A Redis restart would lose the hold; simulate exactly that for one of them.
    store = HoldStore(redis)
    await redis.delete(store.hold_key(journey, uuid.UUID(lost["hold_id"])))

    async def lapsed() -> bool:  # the short hold's TTL has run out in Redis
        return not await redis.exists(store.hold_key(journey, uuid.UUID(expiring["hold_id"])))

    await eventually(lapsed, 10, "the 0.5 s hold expiring in Redis")

    expired_before = metric(
        "jatra_seats_holds_ended_total", reason="expired", **{"class": expiring["seats"][0]["class"]}
    )
    lost_before = metric("jatra_seats_holds_ended_total", reason="lost", **{"class": seat_class})
    async with open_resources(settings, "test-reaper", {"db", "redis"}) as res:
        before_reap = dt.datetime.now(dt.UTC)  # the reap counts at its own start, a moment after this
        assert await reap(res) >= 2
        async with res.db()() as session:
            rows = {
                str(h.id): h.status
                for h in (await session.scalars(select(Hold).where(Hold.journey_id == journey))).all()
            }

            # what the gauges must say: the live holds Postgres has, counted here independently, as of
            # before the reap and as of now (a hold another test left may lapse in between)
            def live_at(when: Any) -> Any:
                return select(
                    func.count(), func.coalesce(func.sum(func.cardinality(Hold.seat_ids)), 0)
                ).where(Hold.status == "ACTIVE", Hold.expires_at > when, Hold.seat_class == seat_class)

            live_then = (await session.execute(live_at(before_reap))).one()
            live_now = (await session.execute(live_at(func.now()))).one()
    assert rows[expiring["hold_id"]] == "EXPIRED" and rows[lost["hold_id"]] == "EXPIRED"
    assert (
        metric("jatra_seats_holds_ended_total", reason="expired", **{"class": expiring["seats"][0]["class"]})
        >= expired_before + 1
    )
    assert metric("jatra_seats_holds_ended_total", reason="lost", **{"class": seat_class}) >= lost_before + 1
    assert live_now[0] <= metric("jatra_seats_holds_live", **{"class": seat_class}) <= live_then[0]
    assert live_now[1] <= metric("jatra_seats_held", **{"class": seat_class}) <= live_then[1]


async def test_hold_metrics_spans_and_logs(
    client: AsyncTestClient[Litestar], passenger: Passenger, spans: InMemorySpanExporter, ecs_logs: EcsLines
) -> None:
    journey = await a_journey(client)
    seats = await free_seats(client, journey, "DA", "SYT", 1)
    body = {"journey_id": journey, "from": "DA", "to": "SYT", "seats": seats}
    spans.clear()
    response = await client.post("/api/v1/holds", json=body, headers=passenger.headers)
    assert response.status_code == 201
    seat_class = response.json()["seats"][0]["class"]

    text = (await client.get("/metrics")).text
    assert f'jatra_seats_hold_outcomes_total{{class="{seat_class}",outcome="acquired"}}' in text
    assert 'jatra_seats_hold_script_duration_seconds_count{script="hold"}' in text

    finished = spans.get_finished_spans()
    [script] = [s for s in finished if s.name == "seats.hold_script.hold"]
    assert script.attributes is not None
    assert script.attributes["jatra.hold.seats"] == 1 and script.attributes["jatra.hold.outcome"] == "ok"
    [server] = [
        s for s in finished if s.kind == SpanKind.SERVER and s.context.trace_id == script.context.trace_id
    ]
    assert server.name == "POST /api/v1/holds"
    assert any(event.name == "hold.acquired" for event in server.events)

    logged = [line for line in ecs_logs.lines if line["message"] == "hold.acquired"]
    assert logged and logged[-1]["trace"]["id"] == format(script.context.trace_id, "032x")


async def test_sales_postgres_has_are_made_known_to_redis(
    settings: Settings, redis: Redis, stack: object
) -> None:
    """Redis lost its sold legs (or a sale bypassed it): the reaper restores them from Postgres."""
    journey = random.randrange(10**8, 10**9)
    async with open_resources(settings, "test-reaper", {"db", "redis"}) as res:
        async with res.db()() as session:
            real = (await session.scalars(select(Journey).limit(1))).one()
            sold = select(SeatSale.seat_id).where(SeatSale.journey_id == real.id)
            seat = (  # a seat nobody bought yet: this test's own, no other test's sale is touched
                await session.scalars(
                    select(Seat.id)
                    .join(Coach, Coach.id == Seat.coach_id)
                    .where(Coach.train_number == real.train_number, Seat.id.not_in(sold))
                )
            ).first()
            assert seat is not None
            await record_sale(session, real.id, [seat], Segment(1, 3), None)
            await session.commit()
        journey = real.id
        store = HoldStore(redis)
        await sync_sold_legs(res, store)
        _, sold, _ = await store.occupancy(journey)
        assert sold[seat] & Segment(1, 3).mask == Segment(1, 3).mask
        # A Redis that lost everything (cursor included) is rebuilt from the whole history, in one pass
        # however many batches it takes.
        await redis.delete(store.sold_key(journey), SALES_CURSOR)
        async with res.db()() as session:
            every_sale = await session.scalar(select(func.count()).select_from(SeatSale))
            last_sale = await session.scalar(select(func.max(SeatSale.id)))
        assert await sync_sold_legs(res, store, batch=2) == every_sale
        assert int(await redis.get(SALES_CURSOR) or 0) == last_sale
        _, sold, _ = await store.occupancy(journey)
        assert sold[seat] & Segment(1, 3).mask == Segment(1, 3).mask


async def test_a_hold_released_in_redis_and_not_yet_in_postgres_is_not_lost(
    settings: Settings, make_passengers: MakePassengers, redis: Redis
) -> None:
    """A passenger's release ends the hold in Redis first (a tombstone) and in Postgres a moment later. A
    reaper pass in between must leave it to the release (RELEASED), not call it lost (EXPIRED); a hold
    whose key is gone altogether is lost."""
    [alice] = await make_passengers(1)
    async with AsyncTestClient(app=create_app(["all"], settings)) as client:
        journey = await a_journey(client)
        seats = await free_seats(client, journey, "DA", "SYT", 1)
        body = {"journey_id": journey, "from": "DA", "to": "SYT", "seats": seats}
        hold = (await client.post("/api/v1/holds", json=body, headers=alice.headers)).json()
    hold_id = uuid.UUID(hold["hold_id"])
    store = HoldStore(redis)
    assert not isinstance(await store.release(journey, hold_id, alice.user_id), Refused)  # Redis only

    async def status() -> str:
        async with open_resources(settings, "test-reaper", {"db", "redis"}) as res:
            await reap(res)
            async with res.db()() as session:
                found = await session.get(Hold, hold_id)
                assert found is not None
                return str(found.status)

    assert await status() == "ACTIVE"  # the release's own update is still to come
    await redis.delete(store.hold_key(journey, hold_id))  # now as if Redis had lost it
    assert await status() == "EXPIRED"
