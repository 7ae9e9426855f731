"""Postgres refuses a second sale of a seat on overlapping legs, with Redis bypassed entirely."""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from jatra.db.catalog import Journey
from jatra.db.inventory import SeatSale
from jatra.infra.db import create_engine, session_factory
from jatra.infra.resources import open_resources
from jatra.inventory.holds import HoldStore
from jatra.inventory.sales import DoubleSale, record_sale
from jatra.inventory.segments import Segment
from jatra.seats.reaper import sync_sold_legs
from jatra.settings import Settings
from jatra.stack.manager import Stack
from tests.integration.helpers import unsold_seats

pytestmark = pytest.mark.integration


@pytest.fixture
async def sessions(stack: Stack, settings: Settings) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    engine = create_engine(settings, admin=True)
    yield session_factory(engine)
    await engine.dispose()
    # These sales bypassed Redis on purpose; tell Redis now, as the reaper would, so other tests see them.
    async with open_resources(settings, "test", {"db", "redis"}) as res:
        await sync_sold_legs(res, HoldStore(res.cache()))


async def a_seat(sessions: async_sessionmaker[AsyncSession]) -> tuple[int, list[int]]:
    """A journey and four of its seats that nobody has bought on any leg: this test's own seats, so it
    touches no other test's sales (and deletes none)."""
    async with sessions() as session:
        journey = random.choice((await session.scalars(select(Journey).limit(500))).all())
        seats = await unsold_seats(session, journey)
    return journey.id, random.sample(seats, 4)


async def sell(
    sessions: async_sessionmaker[AsyncSession], journey: int, seats: list[int], seg: Segment
) -> None:
    async with sessions() as session:
        await record_sale(session, journey, seats, seg, None)
        await session.commit()


async def test_overlapping_second_sale_is_refused(sessions: async_sessionmaker[AsyncSession]) -> None:
    journey, seats = await a_seat(sessions)
    await sell(sessions, journey, [seats[0]], Segment(0, 3))
    with pytest.raises(DoubleSale):
        await sell(sessions, journey, [seats[0]], Segment(2, 5))
    with pytest.raises(DoubleSale):
        await sell(sessions, journey, [seats[0]], Segment(1, 2))
    # Touching segments and other seats are fine: a seat sold Dhaka->Bhairab is sellable Bhairab->Sylhet.
    await sell(sessions, journey, [seats[0]], Segment(3, 6))
    await sell(sessions, journey, [seats[1]], Segment(0, 6))


async def test_a_multi_seat_sale_is_all_or_nothing(sessions: async_sessionmaker[AsyncSession]) -> None:
    journey, seats = await a_seat(sessions)
    await sell(sessions, journey, [seats[2]], Segment(0, 2))
    with pytest.raises(DoubleSale):
        await sell(sessions, journey, [seats[1], seats[2], seats[3]], Segment(1, 4))
    async with sessions() as session:
        sold = (await session.scalars(select(SeatSale.seat_id).where(SeatSale.journey_id == journey))).all()
    assert seats[1] not in sold and seats[3] not in sold  # the good seats of the refused sale were not sold


async def test_concurrent_overlapping_sales_commit_exactly_once(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    journey, seats = await a_seat(sessions)
    # 18 at once: each holds its own connection (the pool has 20), so all of them race in Postgres
    segments = [Segment(a, b) for a, b in [(0, 4), (1, 5), (3, 4), (2, 7), (0, 8), (3, 6)] * 3]

    async def attempt(seg: Segment) -> bool:
        try:
            await sell(sessions, journey, [seats[3]], seg)
        except DoubleSale:
            return False
        return True

    results = await asyncio.gather(*(attempt(seg) for seg in segments))
    assert sum(results) == 1  # every one of these segments covers leg 3, so every pair overlaps
