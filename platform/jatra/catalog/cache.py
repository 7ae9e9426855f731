"""Journey-search cache in Redis: one hash per travel date, one field per (from, to).

Invalidation is explicit and O(1) per date: anything that changes what a date's searches return (new
journeys, a reseed; later, sales) deletes that date's hash. The TTL only bounds staleness.
"""

from __future__ import annotations

import datetime as dt

import structlog
from opentelemetry import trace
from redis.asyncio import Redis
from redis.exceptions import RedisError

from jatra.telemetry import catalogue as c
from jatra.telemetry.metrics import counter

log = structlog.get_logger()
tracer = trace.get_tracer(__name__)

LOOKUPS = counter(c.SEARCH_CACHE_LOOKUPS)
INVALIDATIONS = counter(c.SEARCH_CACHE_INVALIDATIONS)
PREFIX = "jatra:catalog:search:"


def _key(day: dt.date) -> str:
    return PREFIX + day.isoformat()


class SearchCache:
    def __init__(self, redis: Redis, ttl_s: int) -> None:
        self.redis = redis
        self.ttl_s = ttl_s

    async def get(self, origin: str, destination: str, day: dt.date) -> bytes | None:
        """The cached answer, or None on a miss. A Redis failure is a miss, not an error: search degrades."""
        try:
            raw = await self.redis.hget(_key(day), f"{origin}:{destination}")
        except RedisError as exc:
            LOOKUPS.labels("error").inc()
            log.warning("catalog.cache.unavailable", error=str(exc))
            return None
        LOOKUPS.labels("hit" if raw is not None else "miss").inc()
        trace.get_current_span().set_attribute("jatra.cache.hit", raw is not None)
        return raw if isinstance(raw, bytes) else None

    async def put(self, origin: str, destination: str, day: dt.date, body: bytes) -> None:
        key = _key(day)
        try:
            async with self.redis.pipeline(transaction=False) as pipe:
                pipe.hset(key, f"{origin}:{destination}", body)
                pipe.expire(key, self.ttl_s, nx=True)
                await pipe.execute()
        except RedisError as exc:
            log.warning("catalog.cache.write_failed", error=str(exc))

    async def invalidate(self, days: list[dt.date], reason: str) -> None:
        await self._delete([_key(d) for d in days], reason)

    async def invalidate_all(self, reason: str) -> None:
        await self._delete([k.decode() async for k in self.redis.scan_iter(match=PREFIX + "*")], reason)

    async def _delete(self, keys: list[str], reason: str) -> None:
        if not keys:
            return
        with tracer.start_as_current_span("catalog.cache.invalidate") as span:
            span.set_attribute("jatra.cache.dates", len(keys))
            await self.redis.delete(*keys)
        INVALIDATIONS.labels(reason).inc(len(keys))
        log.info(
            "catalog.cache.invalidated", reason=reason, dates=sorted(k.removeprefix(PREFIX) for k in keys)
        )
