"""The list of logged-out logins each process keeps, against the real Redis: a revocation published by
one process reaches another, which then answers without asking Redis; keys revoked before it subscribed
are loaded; while its subscription is lost it asks Redis on every check, and it loads what it missed when
the subscription comes back."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis

from jatra.infra import revocations as module
from jatra.infra.revocations import KEY_PREFIX, REVOKED_SET, STALE_S, Revocations, revoke
from jatra.stack.manager import Stack
from tests.fixtures.app import Recording
from tests.integration.helpers import eventually

pytestmark = pytest.mark.integration
TTL_S = 900


@pytest.fixture
async def process(recording: Recording) -> AsyncIterator[Revocations]:
    """Another process's list, live (its first check starts the subscription)."""
    revocations = Revocations(recording, TTL_S)
    assert await revocations.revoked("nobody") is False  # asked of Redis: not live yet
    assert exists_sent(recording) == 1

    async def live() -> bool:
        return revocations.live

    await eventually(live, 10, "the list subscribed and loaded")
    yield revocations
    await revocations.close()


def exists_sent(client: Recording) -> int:
    """The checks asked of Redis (the list's own SCAN on subscribing is not one)."""
    return client.sent.count("EXISTS")


def family() -> str:
    return str(uuid.uuid4())


async def revoked_unheard(redis: Redis, gone: str) -> None:
    """What revoke() leaves in Redis, without its publication (one lost while a subscription was down)."""
    await redis.set(KEY_PREFIX + gone, 1, ex=TTL_S)
    await redis.zadd(REVOKED_SET, {gone: time.time() + TTL_S})


async def test_a_revocation_elsewhere_is_known_without_a_read_per_check(
    process: Revocations, recording: Recording, redis: Redis
) -> None:
    gone = family()
    await revoke(redis, gone, TTL_S)  # as the process that logged it out does

    async def heard() -> bool:
        return gone in process.known

    await eventually(heard, 5, "the publication arrived")
    recording.sent.clear()
    assert [await process.revoked(f) for f in (gone, family(), gone)] == [True, False, True]
    assert exists_sent(recording) == 0  # answered from memory
    assert await redis.ttl(KEY_PREFIX + gone) > TTL_S  # the key outlives every token of the family


async def test_keys_revoked_before_the_subscription_are_loaded(
    stack: Stack, recording: Recording, redis: Redis
) -> None:
    earlier = family()
    await revoke(redis, earlier, TTL_S)  # while this process was not running
    revocations = Revocations(recording, TTL_S)
    try:
        await revocations.revoked("nobody")

        async def live() -> bool:
            return revocations.live

        await eventually(live, 10, "the list subscribed and loaded")
        recording.sent.clear()
        assert await revocations.revoked(earlier) is True
        assert exists_sent(recording) == 0
    finally:
        await revocations.close()


async def test_a_lost_subscription_asks_redis_then_loads_what_it_missed(
    process: Revocations, recording: Recording, redis: Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(module, "RESUBSCRIBE_S", 3.0)  # time to look while it is down
    assert await redis.client_kill_filter(_type="pubsub") >= 1  # Redis drops every subscriber

    async def lost() -> bool:
        return not process.live

    await eventually(lost, 5, "the list knew its subscription was lost")
    missed = family()
    await revoked_unheard(redis, missed)
    recording.sent.clear()
    assert await process.revoked(missed) is True  # asked of Redis
    assert exists_sent(recording) == 1

    async def live() -> bool:
        return process.live

    await eventually(live, 10, "the list subscribed again")
    recording.sent.clear()
    assert await process.revoked(missed) is True  # loaded with the keys on subscribing again
    assert exists_sent(recording) == 0


async def test_the_heartbeat_keeps_a_quiet_list_live(process: Revocations, recording: Recording) -> None:
    """Nothing published for longer than STALE_S: the pongs of its own pings keep it answering, without
    a gap (looked at every 50 ms)."""
    seen = []
    for _ in range(int((STALE_S + 1.5) / 0.05)):
        seen.append(process.live)
        await asyncio.sleep(0.05)
    assert all(seen), f"not live in {seen.count(False)} of {len(seen)} looks"
    recording.sent.clear()
    assert await process.revoked(family()) is False
    assert exists_sent(recording) == 0


async def test_a_silent_subscription_stops_the_list_answering(
    process: Revocations, recording: Recording
) -> None:
    """Heard from last more than STALE_S ago (a connection that died without a word, say): not live."""
    process.heard -= 60
    recording.sent.clear()
    assert await process.revoked(family()) is False
    assert exists_sent(recording) == 1
