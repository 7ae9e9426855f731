"""`jatra worker timetable`: keep journeys materialised for the booking horizon as the days roll over."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import structlog
from opentelemetry import trace

from jatra.catalog import repository
from jatra.catalog.cache import SearchCache
from jatra.infra.resources import Resources
from jatra.telemetry import catalogue as c
from jatra.telemetry.metrics import counter

log = structlog.get_logger()
tracer = trace.get_tracer(__name__)
MATERIALISED = counter(c.JOURNEYS_MATERIALISED)


async def roll_horizon(res: Resources) -> int:
    """One iteration: create missing journeys up to the horizon, invalidate those dates' searches."""
    settings = res.settings
    tz = ZoneInfo(settings.timezone)
    today = dt.datetime.now(tz).date()
    last = today + dt.timedelta(days=settings.timetable_horizon_days - 1)
    with tracer.start_as_current_span("catalog.timetable.roll") as span:
        async with res.db()() as session:
            created = await repository.materialise_journeys(session, today, last, tz)
            await session.commit()
        span.set_attribute("jatra.timetable.dates_created", len(created))
    if created:
        dates = sorted(set(created))
        await SearchCache(res.cache(), settings.search_cache_ttl_s).invalidate(dates, "journeys_materialised")
        MATERIALISED.inc(len(created))
        log.info("catalog.timetable.rolled", journeys=len(created), dates=len(dates), until=last.isoformat())
    return len(created)
