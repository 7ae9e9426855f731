"""Catalog queries. One round trip per search; the result is cached by the service.

A class's free seats on a leg are its seats less those sold on an overlapping leg: the sales are counted
(a journey has at most its seats' worth), where the statement before probed the sales' index once for
every seat of every train found (~5,500 probes for a busy pair of stations, 13 ms against 1.8 ms over
174 searches of the seeded window, identical answers).
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Collection, Sequence
from decimal import Decimal
from typing import Any

from sqlalchemy import Row, select, text
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from jatra.db.catalog import Journey, SeatClass, Station, Train
from jatra.inventory.fares import FareRule

SEARCH_SQL = text(
    """
    WITH legs AS (
        SELECT j.id AS journey_id, j.train_number, t.name AS train_name,
               j.departs_at + make_interval(mins => sf.depart_min) AS departs_at,
               j.departs_at + make_interval(mins => st.arrive_min) AS arrives_at,
               st.distance_km - sf.distance_km AS distance_km, sf.seq AS from_seq, st.seq AS to_seq
        FROM journeys j
        JOIN trains t ON t.number = j.train_number
        JOIN train_stops sf ON sf.train_number = j.train_number AND sf.station_code = :origin
        JOIN train_stops st ON st.train_number = j.train_number AND st.station_code = :destination
        WHERE sf.seq < st.seq
          AND j.service_date BETWEEN CAST(:day AS date) - 1 AND CAST(:day AS date)
          AND CAST((j.departs_at + make_interval(mins => sf.depart_min)) AT TIME ZONE :tz AS date) = :day
    ),
    capacity AS (
        SELECT c.train_number, c.seat_class, count(*) AS seats
        FROM coaches c
        JOIN seats s ON s.coach_id = c.id
        WHERE c.train_number IN (SELECT train_number FROM legs)
        GROUP BY c.train_number, c.seat_class
    ),
    sold AS (
        SELECT l.journey_id, c.seat_class, count(DISTINCT ss.seat_id) AS seats
        FROM legs l
        JOIN seat_sales ss ON ss.journey_id = l.journey_id AND ss.legs && int4range(l.from_seq, l.to_seq)
        JOIN seats s ON s.id = ss.seat_id
        JOIN coaches c ON c.id = s.coach_id AND c.train_number = l.train_number
        GROUP BY l.journey_id, c.seat_class
    )
    SELECT l.journey_id, l.train_number, l.train_name, l.departs_at, l.arrives_at, l.distance_km,
           cap.seat_class, cap.seats - coalesce(sold.seats, 0) AS seats
    FROM legs l
    JOIN capacity cap ON cap.train_number = l.train_number
    LEFT JOIN sold ON sold.journey_id = l.journey_id AND sold.seat_class = cap.seat_class
    ORDER BY l.departs_at, l.train_number, cap.seat_class
    """
)


async def list_stations(session: AsyncSession) -> Sequence[Station]:
    return (await session.scalars(select(Station).order_by(Station.code))).all()


#: the stations and the fare rules change only when the catalogue is seeded again, which adds rows and
#: changes none: a process reads them at most once in this long, and again when one it is asked about is
#: missing (a search not in the cache read both every time, two statements)
STATIC_TTL_S = 300.0
_stations: tuple[float, frozenset[str]] | None = None
_rules: tuple[float, dict[str, tuple[FareRule, str]]] | None = None


def _fresh(copy: tuple[float, Any] | None, wanted: Collection[str]) -> bool:
    return (
        copy is not None and time.monotonic() - copy[0] <= STATIC_TTL_S and all(w in copy[1] for w in wanted)
    )


async def station_codes(session: AsyncSession, wanted: Collection[str] = ()) -> frozenset[str]:
    """Every station's code (read again if one of ``wanted`` is not among them)."""
    global _stations  # noqa: PLW0603 -- this process's copy
    if not _fresh(_stations, wanted):
        codes = frozenset((await session.scalars(select(Station.code))).all())
        _stations = (time.monotonic(), codes)
    assert _stations is not None
    return _stations[1]


async def fare_rules(session: AsyncSession, wanted: Collection[str] = ()) -> dict[str, tuple[FareRule, str]]:
    """Each class's fare rule and name, by class code (read again if one of ``wanted`` is missing)."""
    global _rules  # noqa: PLW0603 -- this process's copy
    if not _fresh(_rules, wanted):
        rows = (await session.scalars(select(SeatClass))).all()
        rules = {
            r.code: (FareRule(r.code, Decimal(r.rate_per_km), r.minimum_fare, r.vat_percent), r.name)
            for r in rows
        }
        _rules = (time.monotonic(), rules)
    assert _rules is not None
    return _rules[1]


def forget_static() -> None:
    """Read the stations and fare rules again next time (after seeding, in this process)."""
    global _stations, _rules  # noqa: PLW0603
    _stations = _rules = None


async def search(
    session: AsyncSession, origin: str, destination: str, day: dt.date, tz: str
) -> Sequence[Row[tuple[Any, ...]]]:
    result = await session.execute(
        SEARCH_SQL, {"origin": origin, "destination": destination, "day": day, "tz": tz}
    )
    return result.all()


#: rows per INSERT: three parameters each, and Postgres's protocol allows at most 32,767 per statement
#: (`jatra seed --days 170` made one of 33,942)
JOURNEYS_PER_INSERT = 5000


async def materialise_journeys(
    session: AsyncSession, first: dt.date, last: dt.date, tz: dt.tzinfo
) -> list[dt.date]:
    """Create the journeys of every train for each date in [first, last] (skipping off days).

    Idempotent: existing journeys are left alone. Returns the service date of each journey created.
    """
    trains = (await session.scalars(select(Train))).all()
    rows = []
    day = first
    while day <= last:
        for train in trains:
            if train.off_day == day.isoweekday():
                continue
            midnight = dt.datetime.combine(day, dt.time(), tzinfo=tz)
            rows.append(
                {
                    "train_number": train.number,
                    "service_date": day,
                    "departs_at": midnight + dt.timedelta(minutes=train.departs_min),
                }
            )
        day += dt.timedelta(days=1)
    created: list[dt.date] = []
    for start in range(0, len(rows), JOURNEYS_PER_INSERT):
        chunk = rows[start : start + JOURNEYS_PER_INSERT]
        stmt = insert(Journey).values(chunk).on_conflict_do_nothing().returning(Journey.service_date)
        created.extend((await session.scalars(stmt)).all())
    return created
