"""A doorbell across processes: one process rings for a key (Redis PUBLISH), waiters on that key in every
other process wake up, with the short note the ringer left (the new state, so a waiter need not read it
again). It promises nothing: a waiter woken without a note (the subscription broke and came back) reads
the truth again, and every waiter also wakes when its time is up, so a lost ring costs only a late answer.

Each process holds one subscription per channel, started on the first wait, and keeps its waiters in a
dict: a thousand long polls cost one Redis connection, not a thousand.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
from typing import NamedTuple

import structlog
from redis.asyncio import Redis, RedisCluster
from redis.exceptions import RedisError

from jatra.infra.tasks import stop

log = structlog.get_logger()


class Rung(NamedTuple):
    rung: bool
    note: str | None


#: pause before subscribing again after the subscription broke
RESUBSCRIBE_S = 1.0


async def ring(redis: Redis | RedisCluster, channel: str, key: str, note: str = "") -> None:
    """Wake whoever waits on ``key`` and hand them ``note``. Best effort: a failure only makes waiters
    answer at their timeout."""
    try:
        await redis.publish(channel, f"{key}\n{note}")
    except (RedisError, OSError) as exc:
        log.warning("doorbell.ring_failed", channel=channel, error=type(exc).__name__)


class Doorbell:
    def __init__(self, redis: Redis, channel: str) -> None:
        self.redis = redis
        self.channel = channel
        self.waiters: dict[str, set[asyncio.Future[str | None]]] = {}
        self._listener: asyncio.Task[None] | None = None
        self._subscribed = asyncio.Event()
        self.closed = False

    async def wait(self, key: str, seconds: float, ready: asyncio.Future[str | None]) -> Rung:
        """Wait up to ``seconds`` on a future from :meth:`expect`: whether it was rung, and the note if any
        (None when woken without one, or on time out)."""
        try:
            return Rung(True, await asyncio.wait_for(ready, seconds))
        except TimeoutError:
            return Rung(False, None)
        finally:
            self.cancel(key, ready)

    async def expect(self, key: str) -> asyncio.Future[str | None]:
        """Register interest in ``key`` *before* reading the state it guards, so no ring falls between."""
        self._start()
        if not self._subscribed.is_set():  # the first waiters, or Redis is down: wait briefly for it
            with contextlib.suppress(TimeoutError):  # still down: the waiter simply waits out its time
                await asyncio.wait_for(self._subscribed.wait(), 1.0)
        ready: asyncio.Future[str | None] = asyncio.get_running_loop().create_future()
        self.waiters.setdefault(key, set()).add(ready)
        return ready

    def cancel(self, key: str, ready: asyncio.Future[str | None]) -> None:
        """Forget a waiter (done waiting, or never waited)."""
        waiting = self.waiters.get(key)
        if waiting is not None:
            waiting.discard(ready)
            if not waiting:
                del self.waiters[key]

    def _start(self) -> None:
        if (self._listener is None or self._listener.done()) and not self.closed:
            # a context of its own: not the trace and log context of the request that started it
            self._listener = asyncio.create_task(
                self._listen(), name=f"doorbell:{self.channel}", context=contextvars.Context()
            )

    async def _listen(self) -> None:
        while not self.closed:
            pubsub = self.redis.pubsub(ignore_subscribe_messages=True)
            try:
                await pubsub.subscribe(self.channel)
                self._subscribed.set()
                self._wake_all()  # rings may have been lost while unsubscribed: let everyone look again
                while not self.closed:
                    message = await pubsub.get_message(timeout=5.0)
                    if message is not None and message["type"] == "message":
                        key, _, note = message["data"].decode().partition("\n")
                        self._wake(key, note or None)
            except (RedisError, OSError) as exc:
                self._subscribed.clear()
                log.warning("doorbell.subscription_lost", channel=self.channel, error=type(exc).__name__)
                await asyncio.sleep(RESUBSCRIBE_S)
            finally:
                with contextlib.suppress(RedisError, OSError):
                    await pubsub.aclose()  # type: ignore[no-untyped-call]

    def _wake(self, key: str, note: str | None = None) -> None:
        for ready in self.waiters.pop(key, ()):
            if not ready.done():
                ready.set_result(note)

    def _wake_all(self) -> None:
        for key in list(self.waiters):
            self._wake(key)

    async def close(self) -> None:
        self.closed = True
        await stop(self._listener)
        self._wake_all()
