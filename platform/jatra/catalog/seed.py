"""`jatra seed`: load the timetable and materialise journeys. Idempotent: running it again changes nothing.

Coach and seat ids are derived from the train number (coach = train*100 + position, seat = coach*1000 +
number), so a reseed keeps every id that holds and bookings refer to.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

import structlog
from sqlalchemy import Table
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from jatra.catalog import repository
from jatra.catalog.timetable import Timetable, load
from jatra.db.catalog import Coach, Seat, SeatClass, Station, Train, TrainStop

log = structlog.get_logger()
CHUNK = 5000


@dataclass(frozen=True, slots=True)
class SeedReport:
    stations: int
    trains: int
    lines: int
    seats: int
    journeys_created: int


def coach_id(train: int, position: int) -> int:
    return train * 100 + position


def seat_id(coach: int, number: int) -> int:
    return coach * 1000 + number


async def _upsert(session: AsyncSession, model: Any, rows: list[dict[str, Any]]) -> None:
    table: Table = model.__table__
    for start in range(0, len(rows), CHUNK):
        await session.execute(insert(table).values(rows[start : start + CHUNK]).on_conflict_do_nothing())


def _rows(tt: Timetable) -> dict[Any, list[dict[str, Any]]]:
    stations = [{"code": s.code, "name": s.name, "division": s.division} for s in tt.stations]
    classes = [
        {"code": c.rule.seat_class, "name": c.name, "rate_per_km": c.rule.rate_per_km,
         "minimum_fare": c.rule.minimum_fare, "vat_percent": c.rule.vat_percent, "berth": c.berth}
        for c in tt.classes
    ]  # fmt: skip
    trains, stops, coaches, seats = [], [], [], []
    for t in tt.trains:
        trains.append(
            {"number": t.number, "name": t.name, "off_day": t.off_day, "departs_min": t.departs_min}
        )
        stops += [
            {"train_number": t.number, "seq": s.seq, "station_code": s.station, "arrive_min": s.arrive_min,
             "depart_min": s.depart_min, "distance_km": s.distance_km}
            for s in t.stops
        ]  # fmt: skip
        for position, coach in enumerate(t.coaches, start=1):
            cid = coach_id(t.number, position)
            coaches.append(
                {"id": cid, "train_number": t.number, "code": coach.code, "seat_class": coach.seat_class,
                 "position": position}
            )  # fmt: skip
            seats += [
                {"id": seat_id(cid, n), "coach_id": cid, "number": n} for n in range(1, coach.seats + 1)
            ]
    return {
        Station: stations,
        SeatClass: classes,
        Train: trains,
        TrainStop: stops,
        Coach: coaches,
        Seat: seats,
    }


async def seed(session: AsyncSession, days: int, tz_name: str) -> SeedReport:
    tt = load()
    rows = _rows(tt)
    for model, model_rows in rows.items():
        await _upsert(session, model, model_rows)
    tz = ZoneInfo(tz_name)
    today = dt.datetime.now(tz).date()
    created = await repository.materialise_journeys(session, today, today + dt.timedelta(days=days - 1), tz)
    await session.commit()
    repository.forget_static()  # this process reads the stations and fare rules again
    report = SeedReport(len(tt.stations), len(tt.trains), tt.lines, len(rows[Seat]), len(created))
    log.info("catalog.seeded", stations=report.stations, trains=report.trains, lines=report.lines,
             seats=report.seats, journeys_created=len(created))  # fmt: skip
    return report
