"""The timetable worker rolls the booking horizon forward and invalidates the searches it changes."""

from __future__ import annotations

import dataclasses

import pytest
from redis.asyncio import Redis
from sqlalchemy import delete, func, select

from jatra.catalog.cache import SearchCache
from jatra.catalog.worker import roll_horizon
from jatra.db.catalog import Journey
from jatra.infra.resources import open_resources
from jatra.settings import Settings
from tests.integration.helpers import travel_day

pytestmark = pytest.mark.integration


async def test_roll_horizon_creates_missing_days_once(
    settings: Settings, redis: Redis, stack: object
) -> None:
    wider = dataclasses.replace(settings, timetable_horizon_days=settings.timetable_horizon_days + 2)
    last_day = travel_day(wider.timetable_horizon_days - 1)
    cache = SearchCache(redis, 60)
    async with open_resources(wider, "test-timetable", {"db", "redis"}) as res:
        async with res.db()() as session:
            await session.execute(delete(Journey).where(Journey.service_date == last_day))
            await session.commit()
        await cache.put("DA", "CGP", last_day, b"stale")

        first = await roll_horizon(res)
        second = await roll_horizon(res)

        async with res.db()() as session:
            count = await session.scalar(select(func.count()).where(Journey.service_date == last_day))
    assert count is not None and count >= 60  # every train but those whose off day it is
    assert first >= count  # the last day, plus any other day the wider horizon added
    assert second == 0
    assert await cache.get("DA", "CGP", last_day) is None  # the stale answer was invalidated
