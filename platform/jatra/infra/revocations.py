"""Which logins are logged out, known in each process without a Redis read per request.

A logout, or a refresh token presented twice, revokes a login family: its access tokens must stop working
at once on every replica, not when they expire. :func:`revoke` writes, in one transaction, the family's key
(kept for an access token's lifetime), its entry in a sorted set of revoked families scored by when they
may be forgotten, and a publication. Each process subscribes; once Redis confirms the subscription it
reads the sorted set, and from then on it answers from memory. Asking Redis instead was one ``EXISTS``
per authenticated request, about four a booking.

The list answers only while it is live: loaded, and heard from on its subscription (a message or the pong
of its own heartbeat, sent every ``HEARTBEAT_S``) within ``STALE_S``. Starting, after the subscription
broke, or when it went silent, every check asks Redis for the family's key, as before, and the list loads
the sorted set again when it subscribes again. The revoking process marks the family before its answer;
another process knows it when it reads the publication. The bounds, stated: a process whose subscription
died without a word may accept a revoked family's token for up to ``STALE_S`` (then it asks Redis); and a
process so far behind that the publication and a request sent after the logout answered wait for it in the
same turn of its event loop may serve that request first.

This relies on redis-py surfacing a broken pub/sub connection as an error (the client retries nothing:
``jatra.infra.redis``); a client that reconnected and subscribed again by itself would skip the reload.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import time
from collections import OrderedDict

import structlog
from redis.asyncio import Redis
from redis.asyncio.client import PubSub
from redis.exceptions import RedisError

from jatra.infra.tasks import stop
from jatra.telemetry import catalogue as c
from jatra.telemetry.metrics import counter, gauge

log = structlog.get_logger()
KEY_PREFIX = "jatra:auth:revoked:"
#: every revoked family, scored by when it may be forgotten (epoch seconds): what a subscriber loads
REVOKED_SET = "jatra:auth:revoked"
CHANNEL = "jatra:auth:revocations"
#: the subscription pings this often; the list is stale after STALE_S without a word on it
HEARTBEAT_S = 1.0
STALE_S = 3.0
#: pause before subscribing again after the subscription broke
RESUBSCRIBE_S = 1.0
#: how long a family is kept beyond an access token's lifetime (as its key in Redis)
GRACE_S = 60

LIVE = gauge(c.AUTH_REVOCATIONS_LIVE)
CHECKS = counter(c.AUTH_REVOCATION_CHECKS)
FROM_MEMORY = CHECKS.labels("memory")
FROM_REDIS = CHECKS.labels("redis")


async def revoke(redis: Redis, family: str, token_ttl_s: int) -> None:
    """Refuse the access tokens of ``family`` from now on, in every process: its key, its entry in the
    set subscribers load, and its publication, in one transaction (a subscriber hears it, or finds it
    when it loads, or asks for its key while not live)."""
    now = time.time()
    async with redis.pipeline(transaction=True) as pipe:
        pipe.set(KEY_PREFIX + family, 1, ex=token_ttl_s + GRACE_S)
        pipe.zadd(REVOKED_SET, {family: now + token_ttl_s + GRACE_S})
        pipe.zremrangebyscore(REVOKED_SET, "-inf", now)  # those past every token's lifetime
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
        #: when the subscription last said something (monotonic seconds)
        self.heard = float("-inf")
        self.closed = False
        self._listener: asyncio.Task[None] | None = None

    @property
    def live(self) -> bool:
        return self.loaded and time.monotonic() - self.heard < STALE_S

    async def revoked(self, family: str) -> bool:
        if (self._listener is None or self._listener.done()) and not self.closed:
            # a context of its own: not the trace and log context of the request that started it
            self._listener = asyncio.create_task(
                self._listen(), name="auth:revocations", context=contextvars.Context()
            )
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
        while not self.closed:
            pubsub = self.redis.pubsub()
            try:
                await self._subscribe(pubsub)
                for family in await self.redis.zrangebyscore(REVOKED_SET, time.time(), "+inf"):
                    self.mark(family.decode() if isinstance(family, bytes) else str(family))
                self.loaded = True
                LIVE.set(1)
                log.info("auth.revocations.live", known=len(self.known))
                await self._follow(pubsub)
            except (RedisError, OSError) as exc:
                log.warning("auth.revocations.lost", error=type(exc).__name__)
            except Exception:  # a bug: asking Redis per request meanwhile, and a pause before trying again
                log.exception("auth.revocations.failed")
            finally:
                self.loaded = False
                LIVE.set(0)
                with contextlib.suppress(RedisError, OSError):
                    await pubsub.aclose()  # type: ignore[no-untyped-call]
            await asyncio.sleep(RESUBSCRIBE_S)

    async def _subscribe(self, pubsub: PubSub) -> None:
        """Subscribed once Redis confirms it: a revocation after that is published to us, one before it
        is in the set read next."""
        await pubsub.subscribe(CHANNEL)
        deadline = time.monotonic() + STALE_S
        while time.monotonic() < deadline:
            message = await pubsub.get_message(timeout=HEARTBEAT_S)
            if message is not None and message["type"] == "subscribe":
                self.heard = time.monotonic()
                return
        raise TimeoutError("no confirmation of the subscription")

    async def _follow(self, pubsub: PubSub) -> None:
        """Mark each published family, ping every HEARTBEAT_S; return when the subscription went silent."""
        pinged = float("-inf")
        while time.monotonic() - self.heard < STALE_S and not self.closed:
            if time.monotonic() - pinged >= HEARTBEAT_S:
                await pubsub.ping()
                pinged = time.monotonic()
            message = await pubsub.get_message(timeout=HEARTBEAT_S)
            if message is not None:
                self.heard = time.monotonic()
                if message["type"] == "message":
                    self.mark(message["data"].decode())
        if not self.closed:
            log.warning("auth.revocations.silent", unheard_s=round(time.monotonic() - self.heard, 1))

    async def close(self) -> None:
        self.closed = True
        await stop(self._listener)
