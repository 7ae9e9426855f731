"""The relay deletes sent outbox rows once older than the retention, oldest first, in bounded batches
(unsent rows and young ones stay), expired idempotency keys, the first expired first (live ones stay),
and refresh tokens expired longer than the retention ago (the rest of their login stays). Against the
test stack's Postgres."""

from __future__ import annotations

import asyncio
import datetime as dt
import itertools
import secrets
import uuid
from collections.abc import AsyncIterator

import httpx
import pytest
from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import delete, insert, select

from jatra.db.accounts import RefreshToken, User
from jatra.db.bookings import IdempotencyKey, OutboxMessage
from jatra.infra import retention
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


def pruned(table: str = "outbox") -> float:
    return REGISTRY.get_sample_value("jatra_retention_pruned_total", {"table": table}) or 0.0


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
    assert await retention.prune_outbox(res, keep_s=DAY, batch=1) == 1  # one row a batch: the first
    assert pruned() == before + 1
    assert await _left(res, mine) == {old_b, unsent, young}  # the oldest first
    deleted = await retention.prune_outbox(res, keep_s=DAY, batch=1000)
    assert deleted >= 1 and pruned() == before + 1 + deleted
    assert await _left(res, mine) == {unsent, young}
    await retention.prune_outbox(res, keep_s=DAY)
    assert await _left(res, mine) == {unsent, young}  # the unsent and the young are never due


async def test_nothing_is_deleted_within_the_retention(res: Resources) -> None:
    ids = await _rows(res, [(2, 2), (1, 1)])
    await retention.prune_outbox(res, keep_s=2.5 * DAY)
    assert await _left(res, ids) == set(ids)


async def test_the_running_relay_prunes_between_its_passes(
    jatra_processes_running: Stack, res: Resources
) -> None:
    """The test stack's relay (its retention the default 3 days) deletes a row sent 4 days ago, in a pass:
    its idle poll is a minute in tests, so a new row's commit rings it once a prune is due again."""
    [old] = await _rows(res, [(4, 4)])
    await asyncio.sleep(retention.EVERY_S + 1)
    await _rows(res, [(0, None)])  # its commit rings the relay (it stays unsent: undeclared)

    async def gone() -> bool:
        return not await _left(res, [old])

    await eventually(gone, 15, "the relay's prune of a row sent 4 days ago")


@pytest.fixture
async def keys(res: Resources) -> AsyncIterator[uuid.UUID]:
    """A user of its own for this module's idempotency keys, deleted whatever the test did."""
    user = uuid.uuid4()
    try:
        yield user
    finally:
        async with res.db()() as session:
            await session.execute(delete(IdempotencyKey).where(IdempotencyKey.user_id == user))
            await session.commit()


async def _keys(res: Resources, user: uuid.UUID, expiries: list[dt.datetime]) -> list[str]:
    names = [f"retention-test-{i}" for i in range(len(expiries))]
    async with res.db()() as session:
        for name, expires in zip(names, expiries, strict=True):
            values = {"user_id": user, "key": name, "request_hash": "h", "status": "DONE",
                      "response_status": 202, "response_body": {}, "response_headers": {},
                      "created_at": expires - dt.timedelta(days=1), "expires_at": expires}  # fmt: skip
            await session.execute(insert(IdempotencyKey).values(**values))
        await session.commit()
    return names


async def _keys_left(res: Resources, user: uuid.UUID) -> set[str]:
    async with res.db()() as session:
        query = select(IdempotencyKey.key).where(IdempotencyKey.user_id == user)
        return set((await session.scalars(query)).all())


async def _relay_pruned_keys(settings: Settings) -> float | None:
    """How many keys the test stack's relay has pruned (its /metrics); None when it is not running."""
    try:
        async with httpx.AsyncClient(timeout=5) as client:
            text = (await client.get(f"http://127.0.0.1:{settings.ports.app('outbox')}/metrics")).text
    except httpx.TransportError:
        return None
    return sum(
        sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == "jatra_retention_pruned_total" and sample.labels.get("table") == "idempotency_keys"
    )


async def test_expired_idempotency_keys_are_deleted_first_expired_first_and_live_ones_kept(
    res: Resources, keys: uuid.UUID, settings: Settings
) -> None:
    """Two keys that expired before any other in the table (the test stack's Postgres is kept between
    sessions, and other tests leave expired keys behind) and one live for another hour. A batch of one
    deletes the first to expire and not the second; then every expired key goes and the live one stays.
    The test stack's relay, if running, may prune between two steps (its passes follow other tests'
    commits and its idle poll): the order is asserted only when its count of pruned keys did not move."""
    first, second, live = await _keys(
        res, keys, [dt.datetime(2001, 1, 1, tzinfo=dt.UTC), dt.datetime(2001, 1, 2, tzinfo=dt.UTC),
                    dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)],
    )  # fmt: skip
    relay_before, before = await _relay_pruned_keys(settings), pruned("idempotency_keys")
    deleted = await retention.prune_idempotency_keys(res, batch=1)
    left = await _keys_left(res, keys)
    assert deleted <= 1 and pruned("idempotency_keys") == before + deleted  # the batch bounds it
    assert first not in left and live in left
    if await _relay_pruned_keys(settings) == relay_before:  # this prune alone: the first expired, only
        assert deleted == 1 and left == {second, live}
    while await retention.prune_idempotency_keys(res) == retention.BATCH:
        pass  # expired keys other tests left behind, if more than a batch
    assert await _keys_left(res, keys) == {live}


async def test_the_running_relay_deletes_expired_idempotency_keys(
    jatra_processes_running: Stack, res: Resources, keys: uuid.UUID
) -> None:
    # expired before any other key: the relay's first batch takes it, however many others are due
    [expired] = await _keys(res, keys, [dt.datetime(2000, 1, 1, tzinfo=dt.UTC)])
    await asyncio.sleep(retention.EVERY_S + 1)
    await _rows(res, [(0, None)])  # its commit rings the relay (it stays unsent: undeclared)

    async def gone() -> bool:
        return expired not in await _keys_left(res, keys)

    await eventually(gone, 15, "the relay's prune of an expired idempotency key")


@pytest.fixture
async def user(res: Resources) -> AsyncIterator[uuid.UUID]:
    """A user of its own for this module's refresh tokens; deleted (its tokens cascade) after."""
    user_id = uuid.uuid4()
    async with res.db()() as session:
        phone = f"+8801{secrets.randbelow(10**9):09d}"
        await session.execute(insert(User).values(id=user_id, phone=phone))
        await session.commit()
    try:
        yield user_id
    finally:
        async with res.db()() as session:
            await session.execute(delete(User).where(User.id == user_id))
            await session.commit()


async def _tokens(res: Resources, user: uuid.UUID, expiries: list[dt.datetime]) -> list[uuid.UUID]:
    """One login's tokens, one per expiry (a rotation each); their ids."""
    family, ids = uuid.uuid4(), [uuid.uuid4() for _ in expiries]
    async with res.db()() as session:
        for token_id, expires in zip(ids, expiries, strict=True):
            values = {"id": token_id, "family_id": family, "user_id": user,
                      "token_hash": secrets.token_hex(32), "expires_at": expires}  # fmt: skip
            await session.execute(insert(RefreshToken).values(**values))
        await session.commit()
    return ids


async def _tokens_left(res: Resources, user: uuid.UUID) -> set[uuid.UUID]:
    async with res.db()() as session:
        return set((await session.scalars(select(RefreshToken.id).where(RefreshToken.user_id == user))).all())


async def test_tokens_long_expired_are_deleted_first_expired_first_and_the_rest_of_the_login_kept(
    res: Resources, user: uuid.UUID
) -> None:
    """One login rotated four times: two tokens expired in 2000 (before any other in the table), one a day
    ago (inside a week's retention), and the newest live for a week. A batch of one takes the first expired
    (or the running relay took it meanwhile); then every token past the retention goes, and no other."""
    now = dt.datetime.now(dt.UTC)
    first, _second, recent, live = await _tokens(
        res, user, [dt.datetime(2000, 1, 1, tzinfo=dt.UTC), dt.datetime(2000, 1, 2, tzinfo=dt.UTC),
                    now - dt.timedelta(days=1), now + dt.timedelta(days=7)],
    )  # fmt: skip
    before = pruned("refresh_tokens")
    deleted = await retention.prune_refresh_tokens(res, keep_s=7 * DAY, batch=1)
    assert deleted <= 1 and pruned("refresh_tokens") == before + deleted
    left = await _tokens_left(res, user)
    assert first not in left and {recent, live} <= left
    while await retention.prune_refresh_tokens(res, keep_s=7 * DAY) == retention.BATCH:
        pass  # tokens other tests left behind, if more than a batch
    assert await _tokens_left(res, user) == {recent, live}  # the second expired in 2000 too: gone
    await retention.prune_refresh_tokens(res, keep_s=0)  # no retention: expired a day ago goes too
    assert await _tokens_left(res, user) == {live}


async def test_the_running_relay_deletes_long_expired_refresh_tokens(
    jatra_processes_running: Stack, res: Resources, user: uuid.UUID
) -> None:
    # expired before any other token: the relay's first batch takes it, however many others are due
    expired, live = await _tokens(
        res, user, [dt.datetime(2000, 1, 1, tzinfo=dt.UTC), dt.datetime.now(dt.UTC) + dt.timedelta(days=7)]
    )
    assert await _tokens_left(res, user) == {expired, live}
    await asyncio.sleep(retention.EVERY_S + 1)
    await _rows(res, [(0, None)])  # its commit rings the relay (it stays unsent: undeclared)

    async def gone() -> bool:
        return await _tokens_left(res, user) == {live}

    await eventually(gone, 15, "the relay's prune of a refresh token expired in 2000")
