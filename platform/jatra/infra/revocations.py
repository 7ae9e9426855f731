"""Which logins are logged out, known in each process without a Redis read per request.

A logout, or a refresh token presented twice, revokes a login family: its access tokens must stop working
at once on every replica, not when they expire. Redis keeps one key per revoked family for an access
token's lifetime, and :func:`revoke` publishes the family in the same transaction. Each process
subscribes; once the subscription is confirmed it reads the keys that exist, and from then on it answers
from memory. Asking Redis instead was one ``EXISTS`` per authenticated request, about four a booking.

The list answers only while it is live: loaded, and heard from (a message or its own heartbeat's pong)
within ``STALE_S``. Starting, after the subscription broke, or when Redis went silent, every check asks
Redis, as before. A family revoked is known to a process as soon as that process reads the publication;
the revoking process marks it before its answer. What is not promised: a process so far behind that the
publication and a request sent after the logout answered wait for it in the same turn of its event loop
may serve that request first.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import OrderedDict

import structlog
from redis.asyncio import Redis
from redis.asyncio.client import PubSub
from redis.exceptions import RedisError

from jatra.telemetry import catalogue as c
from jatra.telemetry.metrics import counter, gauge

log = structlog.get_logger()
KEY_PREFIX = "jatra:auth:revoked:"
CHANNEL = "jatra:auth:revocations"
#: the subscription pings this often when nothing else arrives; the list is stale after STALE_S unheard
HEARTBEAT_S = 2.0
STALE_S = 5.0
#: pause before subscribing again after the subscription broke
RESUBSCRIBE_S = 1.0
#: how long a family is kept beyond an access token's lifetime (as its key in Redis)
GRACE_S = 60

LIVE = gauge(c.AUTH_REVOCATIONS_LIVE)
CHECKS = counter(c.AUTH_REVOCATION_CHECKS)
FROM_MEMORY = CHECKS.labels("memory")
FROM_REDIS = CHECKS.labels("redis")


async def revoke(redis: Redis, family: str, token_ttl_s: int) -> None:
    """Refuse the access tokens of ``family`` from now on, in every process: its key and its publication
    in one transaction, so no subscriber can miss both."""
    async with redis.pipeline(transaction=True) as pipe:
        pipe.set(KEY_PREFIX + family, 1, ex=token_ttl_s + GRACE_S)
        pipe.publish(CHANNEL, family)
        await pipe.execute()


class Revocations:
    """This process's list of revoked login families (see the module's docstring)."""

    def __init__(self, redis: Redis, token_ttl_s: int) -> None:
        self.redis = redis
        self.keep_s = token_ttl_s + GRACE_S
        #: family -> when it may be forgotten (monotonic seconds), oldest first
        self.known: OrderedDict[str, float] = OrderedDict()
        self.loaded = False
        self.heard = float("-inf")
        self._listener: asyncio.Task[None] | None = None

    @property
    def live(self) -> bool:
        return self.loaded and time.monotonic() - self.heard < STALE_S

    async def revoked(self, family: str) -> bool:
        if self._listener is None or self._listener.done():
            self._listener = asyncio.create_task(self._listen(), name="auth:revocations")
        if self.live:
            FROM_MEMORY.inc()
            return family in self.known
        FROM_REDIS.inc()
        return bool(await self.redis.exists(KEY_PREFIX + family))

    def mark(self, family: str) -> None:
        """Know ``family`` as revoked (a publication, a key found, or this process revoking it)."""
        now = time.monotonic()
        while self.known and next(iter(self.known.values())) < now:  # past every token's lifetime
            self.known.popitem(last=False)
        self.known[family] = now + self.keep_s
        self.known.move_to_end(family)

    async def _listen(self) -> None:
        while True:
            pubsub = self.redis.pubsub()
            try:
                await self._subscribe(pubsub)
                async for key in self.redis.scan_iter(match=KEY_PREFIX + "*", count=1000):
                    self.mark(key.decode().removeprefix(KEY_PREFIX))
                self.loaded, self.heard = True, time.monotonic()
                LIVE.set(1)
                log.info("auth.revocations.live", known=len(self.known))
                await self._follow(pubsub)
            except (RedisError, OSError) as exc:
                log.warning("auth.revocations.lost", error=type(exc).__name__)
            finally:
                self.loaded = False
                LIVE.set(0)
                with contextlib.suppress(RedisError, OSError):
                    await pubsub.aclose()  # type: ignore[no-untyped-call]
            await asyncio.sleep(RESUBSCRIBE_S)

    @staticmethod
    async def _subscribe(pubsub: PubSub) -> None:
        """Subscribed once Redis confirms it: a revocation after that is published to us, one before it
        left its key for the read that follows."""
        await pubsub.subscribe(CHANNEL)
        deadline = time.monotonic() + STALE_S
        while time.monotonic() < deadline:
            message = await pubsub.get_message(timeout=HEARTBEAT_S)
            if message is not None and message["type"] == "subscribe":
                return
        raise TimeoutError("no confirmation of the subscription")

    async def _follow(self, pubsub: PubSub) -> None:
        """Mark each published family; ping when nothing arrives. Returns when Redis went silent."""
        pinged = time.monotonic()
        while self.live:
            message = await pubsub.get_message(timeout=HEARTBEAT_S)
            now = time.monotonic()
            if message is not None:
                self.heard = now
                if message["type"] == "message":
                    self.mark(message["data"].decode())
            if now - pinged >= HEARTBEAT_S:
                await pubsub.ping()
                pinged = now
        log.warning("auth.revocations.silent", unheard_s=round(time.monotonic() - self.heard, 1))

    async def close(self) -> None:
        if self._listener is not None:
            self._listener.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._listener
