"""The relay deletes sent outbox rows once older than the retention, oldest first, in bounded batches;
unsent rows and young ones stay. Against the test stack's Postgres."""

from __future__ import annotations

import asyncio
import datetime as dt
import itertools
import secrets
import uuid
from collections.abc import AsyncIterator

import pytest
from prometheus_client import REGISTRY
from sqlalchemy import delete, insert, select

from jatra.db.bookings import OutboxMessage
from jatra.infra import outbox_retention
from jatra.infra.resources import Resources, open_resources
from jatra.settings import Settings
from jatra.stack.manager import Stack
from tests.integration.helpers import eventually

pytestmark = pytest.mark.integration
DAY = 86400.0
UNDECLARED = "jatra.retention-test"
ROUTING_KEY = "test.outbox_retention"
#: the keys of this module's rows: below every other row's, rising in the order they are written
KEYS = itertools.count(-(2**40) - secrets.randbits(30))


@pytest.fixture
async def res(stack: Stack, settings: Settings) -> AsyncIterator[Resources]:
    async with open_resources(settings, "outbox-retention-test", frozenset({"db"})) as resources:
        try:
            yield resources
        finally:  # this module's rows go, whatever the test did (an unsent one would stay in the backlog)
            async with resources.db()() as session:
                await session.execute(delete(OutboxMessage).where(OutboxMessage.routing_key == ROUTING_KEY))
                await session.commit()


def pruned() -> float:
    return REGISTRY.get_sample_value("jatra_outbox_pruned_total") or 0.0


async def _rows(res: Resources, ages: list[tuple[float, float | None]]) -> list[uuid.UUID]:
    """Outbox rows written ``age`` days ago and sent ``sent`` days ago (None: unsent), in that order and
    before every other row (negative keys: the relay's order is the key's, and other tests' rows, sent
    moments ago, must not come first); their message ids. Younger than the test stack's relay's retention
    (3 days), which runs meanwhile and must leave them to the test."""
    now = dt.datetime.now(dt.UTC)
    ids = [uuid.uuid4() for _ in ages]
    async with res.db()() as session:
        for message_id, (age, sent) in zip(ids, ages, strict=True):
            values = {
                "id": next(KEYS),
                # an unsent row for an exchange the relay does not declare stays unsent (see CLAIM)
                "exchange": "jatra.events" if sent is not None else UNDECLARED,
                "routing_key": ROUTING_KEY,
                "message_id": message_id,
                "payload": {},
                "headers": {},
                "created_at": now - dt.timedelta(days=age),
                "sent_at": None if sent is None else now - dt.timedelta(days=sent),
            }
            await session.execute(insert(OutboxMessage).values(**values))
        await session.commit()
    return ids


async def _left(res: Resources, ids: list[uuid.UUID]) -> set[uuid.UUID]:
    async with res.db()() as session:
        query = select(OutboxMessage.message_id).where(OutboxMessage.message_id.in_(ids))
        return set((await session.scalars(query)).all())


async def test_sent_rows_past_the_retention_are_deleted_and_no_others(res: Resources) -> None:
    # oldest first, as the relay writes and sends them: two sent 2 days ago, one 1.5 days ago but unsent
    # (for an exchange the relay does not declare: it stays unsent), one sent an hour ago. The table is
    # shared (and the test stack's Postgres kept between sessions), so only these rows are looked at.
    old_a, old_b, unsent, young = await _rows(res, [(2, 2), (2, 2), (1.5, None), (0.05, 0.04)])
    mine = [old_a, old_b, unsent, young]
    before = pruned()
    assert await outbox_retention.prune(res, keep_s=DAY, batch=1) == 1  # one row a batch: the first
    assert pruned() == before + 1
    assert await _left(res, mine) == {old_b, unsent, young}  # the oldest first
    deleted = await outbox_retention.prune(res, keep_s=DAY, batch=1000)
    assert deleted >= 1 and pruned() == before + 1 + deleted
    assert await _left(res, mine) == {unsent, young}
    await outbox_retention.prune(res, keep_s=DAY)
    assert await _left(res, mine) == {unsent, young}  # the unsent and the young are never due


async def test_nothing_is_deleted_within_the_retention(res: Resources) -> None:
    ids = await _rows(res, [(2, 2), (1, 1)])
    await outbox_retention.prune(res, keep_s=2.5 * DAY)
    assert await _left(res, ids) == set(ids)


async def test_the_running_relay_prunes_between_its_passes(
    jatra_processes_running: Stack, res: Resources
) -> None:
    """The test stack's relay (its retention the default 3 days) deletes a row sent 4 days ago, in a pass:
    its idle poll is a minute in tests, so a new row's commit rings it once a prune is due again."""
    [old] = await _rows(res, [(4, 4)])
    await asyncio.sleep(outbox_retention.EVERY_S + 1)
    await _rows(res, [(0, None)])  # its commit rings the relay (it stays unsent: undeclared)

    async def gone() -> bool:
        return not await _left(res, [old])

    await eventually(gone, 15, "the relay's prune of a row sent 4 days ago")
