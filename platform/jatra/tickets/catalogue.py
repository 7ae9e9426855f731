"""A ticket's catalogue part (its train, stops, departure and seat labels), from this process's memory.

The catalogue never changes under a booking: a train's name, stops and seats are fixed once seeded, and a
journey's departure once it is materialised. So the API's download of a ticket not drawn yet and the
notifications worker's notice read only the booking, and take the rest from here: a journey is read once
per process (one exchange), and its train once more if the process has not met that train yet. The read
with the catalogue joined in and aggregated was the costliest statement of a booking for Postgres to plan
(about 1 ms each time, twice a booking: PgBouncer 1.18 keeps nothing prepared).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any, LiteralString, TypeVar

from jatra.infra.lru import Lru
from jatra.infra.pg import Statements
from jatra.tickets.view import TicketBooking

V = TypeVar("V")
JOURNEY = "SELECT train_number, departs_at FROM journeys WHERE id = %(journey_id)s"
TRAIN = """
    SELECT t.name AS train_name,
    (SELECT array_agg(ts.station_code ORDER BY ts.seq) FROM train_stops ts
     WHERE ts.train_number = t.number) AS stations,
    (SELECT array_agg(ts.depart_min ORDER BY ts.seq) FROM train_stops ts
     WHERE ts.train_number = t.number) AS depart_mins,
    (SELECT jsonb_object_agg(s.id, c.code || '-' || s.number) FROM seats s
     JOIN coaches c ON c.id = s.coach_id WHERE c.train_number = t.number) AS labels
    FROM trains t WHERE t.number = %(train_number)s
    """
#: journeys and trains kept, least recently used going first (a journey is a few dozen bytes, a train's
#: labels ~120 KB: 76 trains are seeded)
JOURNEYS_KEPT = 20_000
TRAINS_KEPT = 512


@dataclass(frozen=True, slots=True)
class _Journey:
    train_number: int
    departs_at: dt.datetime


@dataclass(frozen=True, slots=True)
class _Train:
    train_name: str
    stations: list[str]
    depart_mins: list[int | None]
    labels: dict[str, str]


@dataclass(frozen=True, slots=True)
class JourneyCatalogue:
    """A journey's catalogue part: a :class:`jatra.tickets.view.Catalogue`. Its lists and labels are
    shared by every ticket of the train: nothing may change them."""

    train_number: int
    train_name: str
    departs_at: dt.datetime
    stations: list[str]
    depart_mins: list[int | None]
    labels: dict[str, str]


_journeys: Lru[int, _Journey] = Lru(JOURNEYS_KEPT)
_trains: Lru[int, _Train] = Lru(TRAINS_KEPT)


async def journey_catalogue(pg: Statements, booking: TicketBooking) -> JourneyCatalogue | None:
    """The catalogue part of ``booking``'s ticket, or None for a journey that does not exist. A seeding
    may add coaches or stops to a train (it never changes or removes any): a train read before that,
    missing one of the booking's seats or stops, is read again."""
    journey_id = booking.journey_id
    journey = await _cached(_journeys, journey_id, pg, JOURNEY, {"journey_id": journey_id}, _Journey)
    if journey is None:
        return None
    number = journey.train_number
    train = await _cached(_trains, number, pg, TRAIN, {"train_number": number}, _Train)
    if train is not None and not _covers(train, booking):
        _trains.pop(number)
        train = await _cached(_trains, number, pg, TRAIN, {"train_number": number}, _Train)
    if train is None:  # a journey's train is a foreign key: only a catalogue deleted under us
        return None
    return JourneyCatalogue(number, train.train_name, journey.departs_at, train.stations,
                            train.depart_mins, train.labels)  # fmt: skip


def _covers(train: _Train, booking: TicketBooking) -> bool:
    return booking.to_seq < len(train.stations) and all(str(s) in train.labels for s in booking.seat_ids)


async def _cached(
    cache: Lru[int, V], key: int, pg: Statements, sql: LiteralString, params: dict[str, Any], row: type[V]
) -> V | None:
    if (found := cache.get(key)) is not None:
        return found
    found = await pg.one(sql, params, row)
    return found if found is None else cache.put(key, found)


def forget() -> None:
    """Drop what this process has read (tests that change the catalogue under it)."""
    _journeys.clear()
    _trains.clear()
