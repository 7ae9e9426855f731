"""Catalog logic: validate a search, answer it from the cache or from Postgres, and fill the cache."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from zoneinfo import ZoneInfo

import msgspec
import structlog
from opentelemetry import trace
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from jatra.catalog import repository
from jatra.catalog.cache import SearchCache
from jatra.catalog.errors import InvalidSearch
from jatra.catalog.schemas import ClassAvailability, JourneyOut, SearchResult, StationOut, TrainRef
from jatra.settings import Settings
from jatra.telemetry import catalogue as c
from jatra.telemetry.metrics import histogram

log = structlog.get_logger()
tracer = trace.get_tracer(__name__)
RESULTS = histogram(c.SEARCH_RESULTS)
_encoder = msgspec.json.Encoder()


def parse_search(origin: str, destination: str, date: str, today: dt.date) -> tuple[str, str, dt.date]:
    """Check the parts of a search that need no database; normalise station codes to upper case."""
    origin, destination = origin.strip().upper(), destination.strip().upper()
    try:
        day = dt.date.fromisoformat(date)
    except ValueError:
        raise InvalidSearch("date", f"{date!r} is not a date in YYYY-MM-DD form") from None
    if day < today:
        raise InvalidSearch("date", f"{day.isoformat()} is in the past (today is {today.isoformat()})")
    if origin == destination:
        raise InvalidSearch("to", "must differ from 'from'")
    return origin, destination, day


class CatalogService:
    def __init__(self, sessions: async_sessionmaker[AsyncSession], redis: Redis, settings: Settings) -> None:
        self.sessions = sessions  # opened on a cache miss only
        self.cache = SearchCache(redis, settings.search_cache_ttl_s)
        self.tz = ZoneInfo(settings.timezone)
        self.settings = settings

    def today(self) -> dt.date:
        return dt.datetime.now(self.tz).date()

    async def stations(self) -> list[StationOut]:
        async with self.sessions() as session:
            rows = await repository.list_stations(session)
        return [StationOut(code=s.code, name=s.name, division=s.division) for s in rows]

    async def search(self, origin: str, destination: str, date: str) -> bytes:
        """Journeys from ``origin`` to ``destination`` leaving on ``date``, as encoded JSON."""
        origin, destination, day = parse_search(origin, destination, date, self.today())
        span = trace.get_current_span()
        span.set_attributes({"jatra.search.from": origin, "jatra.search.to": destination})
        cached = await self.cache.get(origin, destination, day)
        if cached is not None:
            return cached
        async with self.sessions() as session:
            known = await repository.station_codes(session, (origin, destination))
            for field, code in (("from", origin), ("to", destination)):
                if code not in known:
                    raise InvalidSearch(field, f"unknown station code {code!r}")
            result = await self._search_db(session, origin, destination, day)
        body = _encoder.encode(result)
        await self.cache.put(origin, destination, day, body)
        RESULTS.observe(len(result.journeys))
        log.info("catalog.search.computed", origin=origin, destination=destination, date=day.isoformat(),
                 journeys=len(result.journeys))  # fmt: skip
        return body

    async def _search_db(
        self, session: AsyncSession, origin: str, destination: str, day: dt.date
    ) -> SearchResult:
        rows = await repository.search(session, origin, destination, day, self.settings.timezone)
        rules = await repository.fare_rules(session, {row[6] for row in rows})
        classes: dict[int, list[ClassAvailability]] = defaultdict(list)
        heads = {}
        for row in rows:
            journey_id, number, name, departs, arrives, km, seat_class, seats = row
            rule, class_name = rules[seat_class]
            classes[journey_id].append(
                ClassAvailability(
                    seat_class=seat_class, name=class_name, fare=rule.fare(km), seats_available=seats
                )
            )
            heads[journey_id] = (number, name, departs, arrives, km)
        journeys = [
            JourneyOut(
                journey_id=jid,
                train=TrainRef(number=number, name=name),
                origin=origin,
                destination=destination,
                departs_at=departs.astimezone(self.tz),
                arrives_at=arrives.astimezone(self.tz),
                duration_min=int((arrives - departs).total_seconds() // 60),
                distance_km=km,
                classes=classes[jid],
            )
            for jid, (number, name, departs, arrives, km) in heads.items()
        ]
        return SearchResult(origin=origin, destination=destination, date=day, journeys=journeys)
