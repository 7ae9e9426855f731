"""The seed timetable: parse ``data/timetable.toml`` into trains with timed stops (pure functions)."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

from jatra.inventory.fares import FareRule

DATA = Path(__file__).parent / "data" / "timetable.toml"
#: average running speed (km/h) and dwell at each intermediate stop (minutes)
SPEED_KMH = 55
DWELL_MIN = 3


@dataclass(frozen=True, slots=True)
class StationSpec:
    code: str
    name: str
    division: str


@dataclass(frozen=True, slots=True)
class SeatClassSpec:
    rule: FareRule
    name: str
    berth: bool


@dataclass(frozen=True, slots=True)
class CoachSpec:
    code: str
    seat_class: str
    seats: int


@dataclass(frozen=True, slots=True)
class StopSpec:
    seq: int
    station: str
    arrive_min: int | None
    depart_min: int | None
    distance_km: int


@dataclass(frozen=True, slots=True)
class TrainSpec:
    number: int
    name: str
    departs_min: int
    off_day: int | None
    stops: tuple[StopSpec, ...]
    coaches: tuple[CoachSpec, ...]


@dataclass(frozen=True, slots=True)
class Timetable:
    stations: tuple[StationSpec, ...]
    classes: tuple[SeatClassSpec, ...]
    trains: tuple[TrainSpec, ...]
    lines: int


# Coach codes in the Bengali alphabet order that Bangladesh Railway uses (KA, KHA, GA, ...).
COACH_CODES = (
    "KA",
    "KHA",
    "GA",
    "GHA",
    "UMA",
    "CHA",
    "SCHA",
    "JA",
    "JHA",
    "NEO",
    "TA",
    "THA",
    "DA",
    "DHA",
    "NA",
)


def _stops(line: list[tuple[str, int]], direction: str, calls: str) -> tuple[StopSpec, ...]:
    ordered = line if direction == "down" else [(s, line[-1][1] - km) for s, km in reversed(line)]
    wanted = [s for s, _ in ordered] if calls == "*" else calls.split()
    km_of = dict(ordered)
    unknown = [s for s in wanted if s not in km_of]
    if unknown:
        raise ValueError(f"stations {unknown} are not on the line")
    positions = [next(i for i, (s, _) in enumerate(ordered) if s == w) for w in wanted]
    if positions != sorted(positions):
        raise ValueError(f"calls {wanted} are out of line order for direction {direction}")
    first_km = km_of[wanted[0]]
    stops = []
    clock = 0
    for seq, station in enumerate(wanted):
        distance = abs(km_of[station] - first_km)
        if seq == 0:
            stops.append(StopSpec(0, station, None, 0, 0))
            continue
        previous = stops[-1]
        run = round((distance - previous.distance_km) * 60 / SPEED_KMH)
        arrive = clock + max(run, 5)
        last = seq == len(wanted) - 1
        depart = None if last else arrive + DWELL_MIN
        stops.append(StopSpec(seq, station, arrive, depart, distance))
        clock = depart if depart is not None else arrive
    return tuple(stops)


def _coaches(composition: list[list[object]]) -> tuple[CoachSpec, ...]:
    coaches: list[CoachSpec] = []
    for seat_class, count, seats in composition:
        for _ in range(int(str(count))):
            coaches.append(CoachSpec(COACH_CODES[len(coaches)], str(seat_class), int(str(seats))))
    return tuple(coaches)


def load(path: Path = DATA) -> Timetable:
    raw = tomllib.loads(path.read_text())
    stations = tuple(StationSpec(code, name, div) for code, (name, div) in raw["stations"].items())
    classes = tuple(
        SeatClassSpec(FareRule(code, Decimal(str(rate)), int(minimum), int(vat)), str(name), bool(berth))
        for code, (name, rate, minimum, vat, berth) in raw["classes"].items()
    )
    lines = {name: [(str(s), int(km)) for s, km in stops] for name, stops in raw["lines"].items()}
    trains = []
    for number, (name, line, direction, departs, composition, off_day, calls) in raw["trains"].items():
        hours, minutes = (int(x) for x in departs.split(":"))
        trains.append(
            TrainSpec(
                number=int(number),
                name=name,
                departs_min=hours * 60 + minutes,
                off_day=int(off_day) or None,
                stops=_stops(lines[line], direction, calls),
                coaches=_coaches(raw["compositions"][composition]),
            )
        )
    return Timetable(stations, classes, tuple(trains), len(lines))
