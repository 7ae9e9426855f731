"""`jatra rush` against the real processes: it books, drains, and its invariants hold; planted faults in
Redis are caught, so the invariants can fail."""

from __future__ import annotations

import datetime as dt

import pytest
from redis.asyncio import Redis
from sqlalchemy import text

from jatra.domain.segments import Segment
from jatra.infra.db import create_engine, session_factory
from jatra.infra.holds.store import HoldStore
from jatra.rush import invariants
from jatra.rush.options import Options
from jatra.rush.runner import run
from jatra.settings import Settings
from jatra.stack.manager import Stack

pytestmark = pytest.mark.integration


async def test_a_short_rush_books_and_every_invariant_holds(
    jatra_processes_running: Stack, settings: Settings, redis: Redis
) -> None:
    opts = Options(
        base_url=f"http://127.0.0.1:{settings.ports.api}/api/v1",
        provider_url=settings.provider,
        rate=3,
        duration_s=3,
        passengers=8,
        source_ips=4,
        first_day=3,
    )
    since = dt.datetime.now(dt.UTC)
    result = await run(opts, settings)

    assert result["passengers_logged_in"] == 8 and result["arrivals"] == 9
    assert result["bookings_accepted"] >= 1
    assert sum(result["bookings_final"].values()) == result["bookings_accepted"]
    assert set(result["latency"]) >= {"search", "seat_map", "hold", "book", "poll"}
    assert result["invariants_ok"], result["invariants"]
    assert set(result["invariants"]) == {
        "seats_sold_twice", "payments_captured_twice", "accepted_not_final", "holds_leaked",
        "captured_without_confirmed", "sold_but_free_in_redis", "holds_without_expiry",
    }  # fmt: skip
    busy = set(result["cpu_cores"]["by_process"])  # processes that used at least 0.005 core
    # a 3 s rush over a few kept-alive connections may never reach the second replica
    assert {"postgres", "rush (this generator)"} <= busy and any(name.startswith("api-") for name in busy)

    # Plant what the Redis invariants look for, and see them counted.
    engine = create_engine(settings, admin=True)
    async with session_factory(engine)() as session:
        journey, seat, start, end = (
            await session.execute(
                text(
                    "SELECT journey_id, seat_id, lower(legs), upper(legs) FROM seat_sales WHERE sold_at >= :s"
                ),
                {"s": since},
            )
        ).first() or pytest.fail("the rush sold nothing")
    await engine.dispose()
    store = HoldStore(redis)
    stray = f"{store.prefix}:{{j{journey}}}:hold:{'0' * 32}"
    await redis.hdel(store.sold_key(journey), str(seat))  # as after a Redis restart
    await redis.hset(stray, "user", "nobody")  # a hold that would never expire
    try:
        found = await invariants.check(settings, since)
        assert found["sold_but_free_in_redis"] >= 1 and found["holds_without_expiry"] >= 1
    finally:
        await store.mark_sold(journey, [seat], Segment(start, end).mask)
        await redis.delete(stray)
