"""Holds under contention, on a real Redis and on a real three-master Redis Cluster."""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator

import httpx
import pytest
from redis.asyncio import Redis
from redis.asyncio.cluster import RedisCluster

from jatra.infra.scripts import AnyRedis
from jatra.inventory import resync
from jatra.inventory.holds import Acquired, Conflicted, Ended, HoldStore, Limited, Resyncing
from jatra.inventory.segments import Segment
from jatra.settings import Settings
from jatra.stack.manager import Stack
from tests.fixtures.accounts import MakePassengers, Passenger
from tests.integration.helpers import a_journey, free_seats
from tests.integration.history import History

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.fixture(params=["redis", "cluster"])
async def any_redis(
    request: pytest.FixtureRequest, stack: Stack, settings: Settings
) -> AsyncIterator[AnyRedis]:
    # the stack asked for by name: this file alone, or these tests first, must start the Redis they use
    if request.param == "redis":
        client: AnyRedis = Redis.from_url(settings.redis, max_connections=1000)
    else:
        cluster = RedisCluster.from_url(request.getfixturevalue("redis_cluster"), max_connections=1000)
        # Learn the topology before the burst: lazily, every coroutine's first command would race to.
        await cluster.initialize()
        client = cluster
    yield client
    await client.aclose()


async def fresh_journey(store: HoldStore) -> int:
    """A journey id nobody else uses (the store does not need the journey to exist in Postgres), which
    Redis knows to have no sale yet (its synced marker, as the reaper sets it: jatra.inventory.resync)."""
    journey = random.randrange(10**8, 10**9)
    await store.resync(journey, {}, int((time.time() + 3600) * 1000))
    return journey


async def test_one_winner_among_a_thousand_on_the_store(any_redis: AnyRedis) -> None:
    store = HoldStore(any_redis)
    journey, seat, mask = await fresh_journey(store), 4242, Segment(0, 5).mask

    async def attempt() -> Acquired | Conflicted | Limited | Resyncing:
        return await store.hold(journey, uuid.uuid4(), uuid.uuid4(), [seat], mask,
                                ttl_s=30, max_seats=4, max_live=2, seat_class="S_CHAIR")  # fmt: skip

    results = await asyncio.gather(*(attempt() for _ in range(1000)))
    kinds = Counter(type(r).__name__ for r in results)
    assert kinds == {"Acquired": 1, "Conflicted": 999}
    assert all(r.seats == [seat] for r in results if isinstance(r, Conflicted))


async def test_random_overlapping_holds_never_double_hold_a_seat(any_redis: AnyRedis) -> None:
    """200 clients each take 15 random 1-4 seat holds on random segments of 16 seats, and release them or
    let them expire. The number of attempts is fixed (not what a machine manages in some seconds)."""
    store = HoldStore(any_redis)
    journey = await fresh_journey(store)
    history = History()
    pool = list(range(1, 17))
    attempts = 15

    async def client(n: int) -> None:
        rng = random.Random(n)
        user = uuid.uuid4()
        for _ in range(attempts):
            seats = rng.sample(pool, rng.randint(1, 4))
            start = rng.randrange(0, 9)
            mask = Segment(start, rng.randint(start + 1, 10)).mask
            hold_id = uuid.uuid4()
            result = await store.hold(journey, hold_id, user, seats, mask, ttl_s=rng.uniform(0.05, 0.4),
                                      max_seats=4, max_live=2, seat_class="S_CHAIR")  # fmt: skip
            if isinstance(result, Acquired):
                history.acquired(hold_id, seats, mask, result.now_ms, result.expires_ms)
                if rng.random() < 0.6:
                    await asyncio.sleep(rng.uniform(0, 0.2))
                    ended = await store.release(journey, hold_id, user)
                    if isinstance(ended, Ended):
                        history.released(hold_id, ended.now_ms)
            elif isinstance(result, Conflicted):
                history.conflicts += 1
                await asyncio.sleep(rng.uniform(0, 0.02))
            else:
                history.limited += 1
                await asyncio.sleep(0.05)

    await asyncio.gather(*(client(n) for n in range(200)))
    assert len(history.intervals) + history.conflicts + history.limited == 200 * attempts
    # 16 seats x 10 legs hold at most 160 holds at once, and the 200 first attempts arrive together:
    # some must conflict, so the checker below saw real contention
    assert history.conflicts > 0 and len(history.intervals) > 0
    assert history.violations() == []


async def test_a_hold_touches_a_single_cluster_slot(redis_cluster: str) -> None:
    client = RedisCluster.from_url(redis_cluster)
    store = HoldStore(client)
    hold_id, user = uuid.uuid4(), uuid.uuid4()
    keys = [
        store.holds_key(7),
        store.sold_key(7),
        store.hold_key(7, hold_id),
        store.account_key(7, user),
        store.synced_key(7),
    ]
    slots = {await client.cluster_keyslot(k) for k in keys}
    await client.aclose()
    assert len(slots) == 1


async def test_no_hold_on_a_journey_redis_does_not_know_the_sales_of(any_redis: AnyRedis) -> None:
    """Without its synced marker (Redis lost its data, or never had the journey), the hold script takes no
    seat, even a free one; the resync writes Postgres's sold legs over what Redis has (OR: a sale marked
    meanwhile by its own payment stays) and the marker, with the expiry given, in one script."""
    store = HoldStore(any_redis)
    journey = random.randrange(10**8, 10**9)
    args = {"ttl_s": 30, "max_seats": 4, "max_live": 2, "seat_class": "S_CHAIR"}
    refused = await store.hold(journey, uuid.uuid4(), uuid.uuid4(), [5], Segment(3, 5).mask, **args)
    assert isinstance(refused, Resyncing)
    assert await any_redis.exists(store.holds_key(journey), store.hold_key(journey, uuid.uuid4())) == 0
    await store.mark_sold(journey, [6], Segment(4, 5).mask)  # a payment's own mark, while Redis resyncs
    expiry = int((time.time() + 600) * 1000)
    await store.resync(journey, {5: Segment(0, 2).mask, 6: Segment(0, 1).mask}, expiry)
    sold = {int(k): int(v) for k, v in (await any_redis.hgetall(store.sold_key(journey))).items()}
    assert sold == {5: Segment(0, 2).mask, 6: Segment(0, 1).mask | Segment(4, 5).mask}
    assert abs(await any_redis.pexpiretime(store.synced_key(journey)) - expiry) <= 1
    taken = await store.hold(journey, uuid.uuid4(), uuid.uuid4(), [5, 6], Segment(1, 2).mask, **args)
    assert isinstance(taken, Conflicted) and taken.seats == [5]  # sold on leg 1, which Redis had lost
    acquired = await store.hold(journey, uuid.uuid4(), uuid.uuid4(), [5, 6], Segment(2, 4).mask, **args)
    assert isinstance(acquired, Acquired)
    await any_redis.delete(store.sold_key(journey), store.synced_key(journey), store.holds_key(journey))


async def test_markers_are_checked_and_journeys_asked_for_across_slots(
    any_redis: AnyRedis, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The reaper's pipelined checks and writes of markers (a batch of 2 here, a journey per slot on the
    cluster), and the set of journeys the API asks it for (each taken once)."""
    monkeypatch.setattr(resync, "BATCH", 2)
    # a set of its own: the stack's reaper takes from the real one every 15 s
    monkeypatch.setattr(resync, "ASKED", f"jatra:test:resync-asked:{uuid.uuid4().hex}")
    store = HoldStore(any_redis)
    journeys = [random.randrange(10**8, 10**9) for _ in range(5)]
    expiry = int((time.time() + 600) * 1000)
    await resync.mark_synced(store, [(j, expiry) for j in journeys[:3]])
    assert await resync.unsynced(store, journeys) == journeys[3:]
    for journey in (*journeys[3:], journeys[3]):
        await resync.ask(store, journey)
    assert set(journeys[3:]) <= set(await resync.asked(store))
    assert not set(journeys[3:]) & set(await resync.asked(store))
    for journey in journeys[:3]:  # one key at a time: on a cluster each is in a slot of its own
        await any_redis.delete(store.synced_key(journey))


async def test_scripts_reload_after_a_script_flush(any_redis: AnyRedis) -> None:
    store = HoldStore(any_redis)
    journey, user = await fresh_journey(store), uuid.uuid4()
    await any_redis.script_flush()
    result = await store.hold(journey, uuid.uuid4(), user, [1, 2], Segment(0, 2).mask,
                              ttl_s=5, max_seats=4, max_live=2, seat_class="AC_S")  # fmt: skip
    assert isinstance(result, Acquired)


async def test_a_thousand_passengers_one_seat_over_http(
    jatra_processes_running: Stack, settings: Settings, make_passengers: MakePassengers
) -> None:
    """Through the real API processes: exactly one 201 and 999 clean 409 problem documents. The burst is
    far past admission control's limits, so passengers are also told to come back (503 + Retry-After, a
    clean problem too) and do, as the app does."""
    passengers = await make_passengers(1000)
    limits = httpx.Limits(max_connections=200)
    refused: list[httpx.Response] = []
    async with httpx.AsyncClient(
        base_url=f"http://127.0.0.1:{settings.ports.api}", timeout=60, limits=limits
    ) as http:
        journey = await a_journey(http, "DA", "CGP", days_ahead=3)
        [seat] = await free_seats(http, journey, "DA", "CGP", 1)
        body = {"journey_id": journey, "from": "DA", "to": "CGP", "seats": [seat]}

        async def hold(p: Passenger) -> httpx.Response:
            for _ in range(30):
                response = await http.post("/api/v1/holds", json=body, headers=p.headers)
                if response.status_code != 503:
                    return response
                refused.append(response)
                await asyncio.sleep(float(response.headers["retry-after"]) * random.uniform(0.5, 1.5))
            return response

        responses = await asyncio.gather(*(hold(p) for p in passengers))
    assert all(r.json()["type"].endswith("/overloaded") and r.headers["retry-after"] for r in refused)
    statuses = Counter(r.status_code for r in responses)
    assert statuses == {201: 1, 409: 999}
    conflicts = [r for r in responses if r.status_code == 409]
    assert all(r.headers["content-type"].startswith("application/problem+json") for r in conflicts)
    assert all(r.json()["seats"] == [seat] and r.json()["type"].endswith("seats-taken") for r in conflicts)


async def test_a_retried_script_call_gets_the_first_answer(any_redis: AnyRedis) -> None:
    """A client that lost the reply and sends the same hold (same hold id) again gets the first answer, not
    a conflict with itself; a repeated release or sale answers as the first one did (within 60 s)."""
    store = HoldStore(any_redis)
    journey, user, hold_id = await fresh_journey(store), uuid.uuid4(), uuid.uuid4()
    args = {"ttl_s": 30, "max_seats": 4, "max_live": 2, "seat_class": "S_CHAIR"}
    first = await store.hold(journey, hold_id, user, [5, 6], Segment(0, 3).mask, **args)
    again = await store.hold(journey, hold_id, user, [5, 6], Segment(0, 3).mask, **args)
    assert isinstance(first, Acquired) and again == first
    other = await store.hold(journey, uuid.uuid4(), uuid.uuid4(), [6], Segment(0, 3).mask, **args)
    assert isinstance(other, Conflicted)  # the seats are held once, by the first call
    released = await store.release(journey, hold_id, user)
    assert isinstance(released, Ended) and released.seats == [5, 6]
    assert await store.release(journey, hold_id, user) == released  # the tombstone answers the replay


async def test_which_holds_are_gone_asked_together_across_batches_and_slots(
    any_redis: AnyRedis, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The reaper asks about every active hold at once: the answers must be each hold's own, in order,
    # across round trips (a batch of 2 here) and across the cluster's slots (a journey per hold)
    monkeypatch.setattr("jatra.inventory.holds.LIVE_BATCH", 2)
    store, mask = HoldStore(any_redis), Segment(0, 5).mask
    holds = []
    for _ in range(5):
        journey, hold_id, user = await fresh_journey(store), uuid.uuid4(), uuid.uuid4()
        acquired = await store.hold(journey, hold_id, user, [7], mask,
                                    ttl_s=30, max_seats=4, max_live=2, seat_class="S_CHAIR")  # fmt: skip
        assert isinstance(acquired, Acquired)
        holds.append((journey, hold_id, user))
    assert isinstance(await store.sell(holds[1][0], holds[1][1], holds[1][2]), Ended)  # a tombstone
    await any_redis.delete(store.hold_key(holds[3][0], holds[3][1]))  # lost, as after a restart
    never = (await fresh_journey(store), uuid.uuid4())
    asked = [(journey, hold_id) for journey, hold_id, _ in holds] + [never]
    expected = [True, False, True, False, True, False]
    assert [await store.exists(journey, hold_id) for journey, hold_id in asked] == expected
    # asked together, as the reaper asks: only a key that vanished is gone (a tombstone is not)
    assert await store.gone(asked) == [False, False, False, True, False, True]
    assert await store.gone([]) == []


async def test_a_repair_frees_cancelled_legs_and_keeps_those_sold_again(any_redis: AnyRedis) -> None:
    """The reaper's repair of a cancellation (HoldStore.resell): each seat keeps what Redis has less the
    cancelled legs, plus whatever Postgres sells of it now (sold again meanwhile, perhaps overlapping)."""
    store = HoldStore(any_redis)
    journey = await fresh_journey(store)
    cancelled, other, again = Segment(0, 2).mask, Segment(3, 5).mask, Segment(1, 2).mask
    await store.mark_sold(journey, [7, 8, 9], cancelled)
    await store.mark_sold(journey, [8], other)  # another booking's legs of seat 8
    # seat 7 sold again on part of the cancelled legs; seat 9 not
    await store.resell(journey, cancelled, {7: again, 8: other, 9: 0})
    sold = await any_redis.hgetall(store.sold_key(journey))
    assert {int(k): int(v) for k, v in sold.items()} == {7: again, 8: other}  # seat 9's field gone
    await any_redis.delete(store.sold_key(journey))
