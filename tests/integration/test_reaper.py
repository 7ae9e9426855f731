"""The reaper records expiries and lost holds in Postgres and publishes the live-hold gauges."""

from __future__ import annotations

import dataclasses
import datetime as dt
import math
import random
import time
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
from sqlalchemy import func, select, text

from jatra.app import create_app
from jatra.db.bookings import Booking
from jatra.db.catalog import Journey
from jatra.db.inventory import Hold, SeatSale
from jatra.infra.db import create_engine, session_factory
from jatra.infra.resources import open_resources
from jatra.inventory import resync
from jatra.inventory.holds import HoldStore, Refused
from jatra.inventory.sales import record_sale
from jatra.inventory.segments import Segment
from jatra.seats import repository
from jatra.seats.reaper import SALES_CURSOR, reap, sync_sold_legs
from jatra.seats.restore import SETTLING, replay_after_restart, resync_journeys
from jatra.settings import Settings
from jatra.stack.manager import Stack
from tests.fixtures.accounts import MakePassengers, Passenger
from tests.fixtures.app import EcsLines
from tests.fixtures.stack import paused
from tests.integration.helpers import a_journey, eventually, free_seats, unsold_seats

pytestmark = pytest.mark.integration


@pytest.fixture(autouse=True)
def reaper_worker_paused(stack: Stack) -> Iterator[None]:
    """These tests call the reaper themselves; the reaper worker, if earlier tests started the Jatra
    processes, would race them to the same holds and sales. Pause it, and start it again after."""
    with paused(stack, "reaper"):
        yield


async def seat_statuses(client: AsyncTestClient[Litestar], journey: int) -> dict[int, str]:
    """Each seat's status in the journey's seat map, DA to SYT."""
    answer = await client.get(f"/api/v1/journeys/{journey}/seats", params={"from": "DA", "to": "SYT"})
    assert answer.status_code == 200, answer.text
    return {seat["seat_id"]: seat["status"] for seat in answer.json()["seats"]}


def from_postgres_events(logs: EcsLines, journey: int) -> list[dict[str, Any]]:
    return [
        line
        for line in logs.lines
        if line["message"] == "seat_map.sold_from_postgres" and line.get("journey_id") == journey
    ]


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
            seat = (await unsold_seats(session, real))[0]
            await record_sale(session, real.id, [seat], Segment(1, 3), None)
            await session.commit()
        journey = real.id
        store = HoldStore(redis)
        await sync_sold_legs(res, store)
        sold = (await store.occupancy(journey)).sold
        assert sold[seat] & Segment(1, 3).mask == Segment(1, 3).mask
        # A Redis that lost everything (cursor included) is rebuilt from the whole history, in one pass
        # however many batches it takes.
        await redis.delete(store.sold_key(journey), SALES_CURSOR)
        async with res.db()() as session:
            every_sale = await session.scalar(select(func.count()).select_from(SeatSale))
            last_sale = await session.scalar(select(func.max(SeatSale.id)))
        assert await sync_sold_legs(res, store, batch=2) == every_sale
        assert int(await redis.get(SALES_CURSOR) or 0) == last_sale
        sold = (await store.occupancy(journey)).sold
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


async def test_a_journey_redis_lost_takes_no_hold_until_its_sales_are_back(
    settings: Settings,
    client: AsyncTestClient[Litestar],
    passenger: Passenger,
    redis: Redis,
    ecs_logs: EcsLines,
    spans: InMemorySpanExporter,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Redis lost a journey's data (its sold legs and its synced marker, as a restart without persistence
    loses them) while Postgres has a sale on it. Before: a hold took the sold seat, the sale was refused and
    the passenger charged and refunded. Now: every hold on the journey is refused (503 seats-resyncing,
    Retry-After) and asks the reaper for it; the reaper's next pass writes the sale back, and holds are
    answered from the truth: the sold seat taken (409), a free one held. Meanwhile the seat map shows the
    sold seat sold (it showed it free), read from Postgres, and asks the reaper for the journey too."""
    store = HoldStore(redis)
    journey = await a_journey(client)
    sold_seat, free_seat = await free_seats(client, journey, "DA", "SYT", 2)

    async def hold(seat: int) -> Any:
        body = {"journey_id": journey, "from": "DA", "to": "SYT", "seats": [seat]}
        return await client.post("/api/v1/holds", json=body, headers=passenger.headers)

    async with open_resources(settings, "test-reaper", {"db", "redis"}) as res:
        async with res.db()() as session:
            found = await repository.layout(session, journey)
            assert found is not None
            start, end = found.index_of("DA"), found.index_of("SYT")
            assert start is not None and end is not None
            await record_sale(session, journey, [sold_seat], Segment(start, end), None)
            await session.commit()
        await redis.delete(store.sold_key(journey), store.synced_key(journey))  # the restart
        # the cursor there, and a sweep not due: the reaper's next pass restores what was asked
        await redis.set(SALES_CURSOR, 0, nx=True)
        monkeypatch.setattr("jatra.seats.restore._last_sweep", time.monotonic())
        asked_before = metric("jatra_seats_journeys_resynced_total", trigger="asked")

        await resync.asked(store)  # none asked but by what follows (earlier tests may leave some)
        spans.clear()
        seats = await seat_statuses(client, journey)
        assert (seats[sold_seat], seats[free_seat]) == ("sold", "free")
        assert journey in await resync.asked(store)  # taken: the holds below ask again
        [from_postgres] = [s for s in spans.get_finished_spans() if s.name.endswith(".sold_from_postgres")]
        assert from_postgres.attributes is not None
        assert from_postgres.attributes["jatra.seats.journey_id"] == journey
        assert from_postgres.attributes["jatra.seats.sales"] >= 1
        [event] = from_postgres_events(ecs_logs, journey)

        # an earlier test's expired hold may still have its entry (the seat map shows the seat free)
        entries = await redis.hmget(store.holds_key(journey), [str(sold_seat), str(free_seat)])
        for seat in (sold_seat, free_seat):
            refused = await hold(seat)
            assert refused.status_code == 503, refused.text
            assert refused.json()["type"].endswith("/seats-resyncing")
            assert refused.headers["retry-after"] == str(math.ceil(settings.reaper_interval_s))
        held = await redis.hmget(store.holds_key(journey), [str(sold_seat), str(free_seat)])
        assert held == entries  # nothing held, not even the free seat
        logged = [line["journey_id"] for line in ecs_logs.lines if line["message"] == "hold.resyncing"]
        assert logged[-2:] == [journey, journey]

        assert await resync_journeys(res, store) == 1  # the journey asked about, and only it
    assert metric("jatra_seats_journeys_resynced_total", trigger="asked") == asked_before + 1
    sold = (await store.occupancy(journey)).sold
    assert sold[sold_seat] & Segment(start, end).mask == Segment(start, end).mask
    seats = await seat_statuses(client, journey)  # from Redis again, which has the sale back
    assert (seats[sold_seat], seats[free_seat]) == ("sold", "free")
    assert from_postgres_events(ecs_logs, journey) == [event]
    taken = await hold(sold_seat)
    assert taken.status_code == 409 and taken.json()["seats"] == [sold_seat]
    assert (await hold(free_seat)).status_code == 201


async def test_a_seat_map_without_its_marker_and_without_postgres_answers_503(
    settings: Settings, client: AsyncTestClient[Litestar], redis: Redis
) -> None:
    """A seat map of a journey Redis lost reads the sales from Postgres: with Postgres unreachable too it
    answers 503 with Retry-After, naming Postgres, as every dependency failure does (not a map that shows
    sold seats free, and not a 500)."""
    store = HoldStore(redis)
    journey = await a_journey(client)
    await seat_statuses(client, journey)  # the journey's layout now in the process: no read for it below
    await redis.delete(store.synced_key(journey))
    resources = client.app.state.resources
    nowhere = dataclasses.replace(settings, database_url="postgresql+asyncpg://jatra@127.0.0.1:9/jatra")
    engine = create_engine(nowhere)
    working, resources.sessions = resources.sessions, session_factory(engine)
    try:
        answer = await client.get(f"/api/v1/journeys/{journey}/seats", params={"from": "DA", "to": "SYT"})
    finally:
        resources.sessions = working
        await engine.dispose()
        await resync.asked(store)  # the map asked for it: not this test's reaper's business
        await store.resync(journey, {}, int((time.time() + 3600) * 1000))  # sales of other tests: none
    assert answer.status_code == 503, answer.text
    assert answer.headers["retry-after"] == str(settings.retry_after_s)
    assert answer.json()["dependency"] == "postgres"


async def test_a_redis_that_lost_everything_is_resynced_without_replaying_the_history(
    settings: Settings, redis: Redis
) -> None:
    """No cursor and no marker on any sellable journey: Redis lost all it had. The sweep writes back every
    sellable journey's sales and markers, and the cursor starts at the last sale recorded a minute before
    (the replay goes over that minute again), so the reaper does not then replay the whole history. With
    one marker left (one shard of a cluster lost its data, the cursor's), the cursor is left to the replay,
    which starts from the first sale."""
    store = HoldStore(redis)
    async with open_resources(settings, "test-reaper", {"db", "redis"}) as res:
        async with res.db()() as session:
            now = await repository.server_now(session)
            longest = await repository.longest_run(session)
            sellable = [j for j, _ in await repository.sellable_journeys(session, now - longest)]
            settled = await repository.last_sale_before(session, now - SETTLING)
        assert len(sellable) > 1 and longest > dt.timedelta(hours=1)

        async def lose(kept: int) -> None:  # the markers of all but the last ``kept`` to leave
            await redis.delete(SALES_CURSOR, *(store.synced_key(j) for j in sellable[: len(sellable) - kept]))

        await lose(1)  # one journey's marker survives
        assert await resync_journeys(res, store) == len(sellable) - 1
        assert not await redis.exists(SALES_CURSOR)
        await lose(0)  # all gone
        assert await resync_journeys(res, store) == len(sellable)
        async with res.db()() as session:
            after = await repository.server_now(session)
            latest = await repository.last_sale_before(session, after - SETTLING)
        # the last sale a minute before the restore: between the test's two reads of it
        assert settled <= int(await redis.get(SALES_CURSOR) or -1) <= latest
        assert await resync.unsynced(store, sellable) == []
        assert await resync_journeys(res, store) == 0  # nothing asked, no sweep due


async def test_a_cancellation_between_the_restores_read_and_write_is_put_back_on_sale(
    settings: Settings, redis: Redis, passenger: Passenger, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The restore reads a journey's sales, a cancellation (by a process that does not wait for the
    marker) frees its seats, and the restore writes the sale back: the restore then puts the legs of
    bookings cancelled since just before its read back on sale, keeping what Postgres sells now."""
    store = HoldStore(redis)
    async with open_resources(settings, "test-reaper", {"db", "redis"}) as res:
        async with res.db()() as session:
            real = (await session.scalars(select(Journey).order_by(Journey.departs_at.desc()).limit(1))).one()
            seat = (await unsold_seats(session, real))[0]
        journey, legs = real.id, Segment(0, 1)
        read_before = repository.sold_legs_of

        async def read_then_cancel(session: Any, journeys: Any) -> Any:
            rows = await read_before(session, journeys)
            if journey in journeys:  # the cancellation commits between the read and the write
                async with res.db()() as other:
                    await other.execute(
                        text("DELETE FROM seat_sales WHERE journey_id = :j AND seat_id = :s"),
                        {"j": journey, "s": seat},
                    )
                    await other.execute(
                        text("UPDATE bookings SET status = 'CANCELLED', updated_at = now() WHERE id = :b"),
                        {"b": booking_id},
                    )
                    await other.commit()
            return rows

        booking_id = await a_confirmed_booking(res, passenger.user_id, journey, seat, legs)
        await redis.delete(store.synced_key(journey))
        monkeypatch.setattr(repository, "sold_legs_of", read_then_cancel)
        monkeypatch.setattr("jatra.seats.restore._last_sweep", time.monotonic())
        await resync.ask(store, journey)
        await redis.set(SALES_CURSOR, 0, nx=True)
        assert await resync_journeys(res, store) == 1
    sold = (await store.occupancy(journey)).sold
    assert sold.get(seat, 0) & legs.mask == 0  # back on sale, though the restore read it sold


async def test_a_redis_that_came_back_without_its_last_writes_gets_them_again(
    settings: Settings, redis: Redis, passenger: Passenger, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another Redis server answers (its run_id changed) with the journey's marker but without the sold
    legs of a sale written just before (AOF fsynced each second, a replica promoted behind its primary):
    the reaper's next pass marks again the sales recorded since a minute before its last pass. With the
    same server, nothing is replayed."""
    store = HoldStore(redis)
    async with open_resources(settings, "test-reaper", {"db", "redis"}) as res:
        async with res.db()() as session:
            real = (await session.scalars(select(Journey).order_by(Journey.departs_at.desc()).limit(1))).one()
            seat = (await unsold_seats(session, real))[0]
            now = await repository.server_now(session)
        journey, legs = real.id, Segment(0, 1)
        await replay_after_restart(res, store)  # meets the server: nothing to compare with yet, or the same
        assert await replay_after_restart(res, store) == 0  # the same server: nothing replayed
        await a_confirmed_booking(res, passenger.user_id, journey, seat, legs)
        await store.mark_sold(journey, [seat], legs.mask)  # as its payment marked it
        await redis.hdel(store.sold_key(journey), str(seat))  # the write the server came back without
        assert await redis.exists(store.synced_key(journey))  # the marker survived
        monkeypatch.setattr("jatra.seats.restore._seen", ("a server gone", now))
        replayed = metric("jatra_seats_journeys_resynced_total", trigger="restart")
        assert await replay_after_restart(res, store) >= 1
    assert metric("jatra_seats_journeys_resynced_total", trigger="restart") >= replayed + 1
    sold = (await store.occupancy(journey)).sold
    assert sold[seat] & legs.mask == legs.mask


async def a_confirmed_booking(res: Any, user: uuid.UUID, journey: int, seat: int, legs: Segment) -> uuid.UUID:
    """A confirmed booking of one seat, with its hold and its sale, written straight to Postgres."""
    hold_id, booking_id = uuid.uuid4(), uuid.uuid4()
    common = {"journey_id": journey, "user_id": user, "seat_ids": [seat], "seat_class": "S_CHAIR"}
    async with res.db()() as session:
        session.add(
            Hold(id=hold_id, **common, from_seq=legs.start, to_seq=legs.end, status="CONVERTED",
                 expires_at=dt.datetime.now(dt.UTC), total_fare=100)
        )  # fmt: skip
        await session.flush()
        session.add(
            Booking(id=booking_id, hold_id=hold_id, **common, from_seq=legs.start, to_seq=legs.end,
                    passengers=[], payment_method="bkash", amount=100, status="CONFIRMED")
        )  # fmt: skip
        await session.flush()
        await record_sale(session, journey, [seat], legs, booking_id)
        await session.commit()
    return booking_id
