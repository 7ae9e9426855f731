"""Entry points of the catalog service used by the CLI (seed)."""

from __future__ import annotations

from jatra.catalog.cache import SearchCache
from jatra.catalog.seed import SeedReport, seed
from jatra.infra.db import create_engine, session_factory
from jatra.infra.redis import create_redis
from jatra.settings import Settings


async def run_seed(settings: Settings, days: int | None) -> SeedReport:
    engine = create_engine(settings, admin=True)
    redis = create_redis(settings)
    try:
        async with session_factory(engine)() as session:
            report = await seed(session, days or settings.timetable_horizon_days, settings.timezone)
        # A reseed may change any date's answers: drop every cached search.
        await SearchCache(redis, settings.search_cache_ttl_s).invalidate_all("reseed")
        return report
    finally:
        await redis.aclose()
        await engine.dispose()
