"""A doorbell across processes: one process rings for a key (Redis PUBLISH), waiters on that key in every
other process wake up. It carries no data and promises nothing: a waiter always reads the truth again
(from Postgres) after waking, and also wakes when its time is up, so a lost ring costs only a late answer.

Each process holds one subscription per channel, started on the first wait, and keeps its waiters in a
dict: a thousand long polls cost one Redis connection, not a thousand.
"""

from __future__ import annotations

import asyncio
import contextlib

import structlog
from redis.asyncio import Redis, RedisCluster
from redis.exceptions import RedisError

log = structlog.get_logger()
#: pause before subscribing again after the subscription broke
RESUBSCRIBE_S = 1.0


async def ring(redis: Redis | RedisCluster, channel: str, key: str) -> None:
    """Wake whoever waits on ``key``. Best effort: a failure only makes waiters answer at their timeout."""
    try:
        await redis.publish(channel, key)
    except (RedisError, OSError) as exc:
        log.warning("doorbell.ring_failed", channel=channel, error=type(exc).__name__)


class Doorbell:
    def __init__(self, redis: Redis, channel: str) -> None:
        self.redis = redis
        self.channel = channel
        self.waiters: dict[str, set[asyncio.Future[None]]] = {}
        self._listener: asyncio.Task[None] | None = None
        self._subscribed = asyncio.Event()

    async def wait(self, key: str, seconds: float, ready: asyncio.Future[None]) -> bool:
        """Wait up to ``seconds`` on a future from :meth:`expect`; True if rung, False on time out."""
        try:
            await asyncio.wait_for(ready, seconds)
        except TimeoutError:
            return False
        finally:
            self._forget(key, ready)
        return True

    async def expect(self, key: str) -> asyncio.Future[None]:
        """Register interest in ``key`` *before* reading the state it guards, so no ring falls between."""
        self._start()
        with contextlib.suppress(TimeoutError):  # Redis down: the waiter simply waits out its timeout
            await asyncio.wait_for(self._subscribed.wait(), 1.0)
        ready: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.waiters.setdefault(key, set()).add(ready)
        return ready

    def cancel(self, key: str, ready: asyncio.Future[None]) -> None:
        self._forget(key, ready)

    def _forget(self, key: str, ready: asyncio.Future[None]) -> None:
        waiting = self.waiters.get(key)
        if waiting is not None:
            waiting.discard(ready)
            if not waiting:
                del self.waiters[key]

    def _start(self) -> None:
        if self._listener is None or self._listener.done():
            self._listener = asyncio.create_task(self._listen(), name=f"doorbell:{self.channel}")

    async def _listen(self) -> None:
        while True:
            pubsub = self.redis.pubsub(ignore_subscribe_messages=True)
            try:
                await pubsub.subscribe(self.channel)
                self._subscribed.set()
                self._wake_all()  # rings may have been lost while unsubscribed: let everyone look again
                while True:
                    message = await pubsub.get_message(timeout=5.0)
                    if message is not None and message["type"] == "message":
                        self._wake(message["data"].decode())
            except (RedisError, OSError) as exc:
                self._subscribed.clear()
                log.warning("doorbell.subscription_lost", channel=self.channel, error=type(exc).__name__)
                await asyncio.sleep(RESUBSCRIBE_S)
            finally:
                with contextlib.suppress(RedisError, OSError):
                    await pubsub.aclose()  # type: ignore[no-untyped-call]

    def _wake(self, key: str) -> None:
        for ready in self.waiters.pop(key, ()):
            if not ready.done():
                ready.set_result(None)

    def _wake_all(self) -> None:
        for key in list(self.waiters):
            self._wake(key)

    async def close(self) -> None:
        if self._listener is not None:
            self._listener.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._listener
        self._wake_all()
