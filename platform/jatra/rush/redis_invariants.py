"""What must be zero after a rush, checked in Redis against Postgres.

- ``sold_but_free_in_redis``: a sale Postgres committed whose legs Redis does not show as sold, so the seat
  would look free and could be held again (the state after a Redis restart, until the reaper's replay).
  Sales of the last two seconds are left out: Redis is told right after the Postgres commit.
- ``holds_without_expiry``: a hold key in Redis with no TTL, so its seats would never come free.
"""

from __future__ import annotations

import datetime as dt

from redis.asyncio import Redis
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from jatra.inventory.holds import HoldStore
from jatra.inventory.segments import Segment

SALES = """
    SELECT journey_id, seat_id, lower(legs), upper(legs) FROM seat_sales
    WHERE sold_at >= :since AND sold_at < now() - interval '2 seconds'"""


async def sold_but_free(session: AsyncSession, redis: Redis, since: dt.datetime) -> int:
    sales = (await session.execute(text(SALES), {"since": since})).all()
    store = HoldStore(redis)
    async with redis.pipeline(transaction=False) as pipe:
        for journey, seat, _, _ in sales:
            pipe.hget(store.sold_key(journey), str(seat))
        marks = await pipe.execute()
    return sum(
        1
        for (_, _, start, end), mark in zip(sales, marks, strict=True)
        if int(mark or 0) & Segment(start, end).mask != Segment(start, end).mask
    )


async def holds_without_expiry(redis: Redis) -> int:
    pattern = HoldStore(redis).prefix + ":*:hold:*"
    return sum([await redis.ttl(key) == -1 async for key in redis.scan_iter(match=pattern, count=1000)])
