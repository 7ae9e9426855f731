"""The doorbell long polls wait on, against the real Redis: a ring wakes the waiters on its key, with its
note, and no others, and a subscription that breaks wakes everyone (a ring may have been lost) before it
resumes."""

from __future__ import annotations

import pytest
from redis.asyncio import Redis

from jatra.infra.doorbell import Doorbell, ring
from jatra.stack.manager import Stack
from tests.integration.helpers import eventually

pytestmark = pytest.mark.integration
CHANNEL = "jatra:test:doorbell"


async def test_a_ring_wakes_the_waiters_on_its_key_only(stack: Stack, redis: Redis) -> None:
    bell = Doorbell(redis, CHANNEL)
    try:
        mine = [await bell.expect("b-1") for _ in range(3)]
        other = await bell.expect("b-2")
        note = '{"status": "CONFIRMED"}'
        await ring(redis, CHANNEL, "b-1", note)
        assert [await bell.wait("b-1", 10, ready) for ready in mine] == [(True, note)] * 3
        assert await bell.wait("b-2", 0.2, other) == (False, None)  # nobody rang for b-2: it times out
        assert bell.waiters == {}  # the ones that ended are forgotten
    finally:
        await bell.close()


async def test_a_lost_subscription_wakes_every_waiter_and_comes_back(stack: Stack, redis: Redis) -> None:
    bell = Doorbell(redis, CHANNEL)
    try:
        ready = await bell.expect("b-3")
        killed = await redis.client_kill_filter(_type="pubsub")  # Redis drops every subscriber's connection
        assert killed >= 1
        # woken, without a note, to read the truth again (a ring may have been lost), not left to time out
        assert await bell.wait("b-3", 10, ready) == (True, None)

        async def subscribed_again() -> bool:
            return CHANNEL.encode() in await redis.pubsub_channels(CHANNEL)

        await eventually(subscribed_again, 10, "the doorbell subscribed again")
        again = await bell.expect("b-4")
        await ring(redis, CHANNEL, "b-4")
        assert await bell.wait("b-4", 10, again) == (True, None)  # rung with no note
    finally:
        await bell.close()
