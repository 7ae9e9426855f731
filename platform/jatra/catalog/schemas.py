"""Wire types of the catalog API (msgspec Structs, rendered in the OpenAPI)."""

from __future__ import annotations

import datetime as dt

import msgspec


class StationOut(msgspec.Struct, frozen=True, kw_only=True):
    code: str
    name: str
    division: str


class TrainRef(msgspec.Struct, frozen=True, kw_only=True):
    number: int
    name: str


class ClassAvailability(msgspec.Struct, frozen=True, kw_only=True):
    seat_class: str = msgspec.field(name="class")
    name: str
    fare: int
    seats_available: int


class JourneyOut(msgspec.Struct, frozen=True, kw_only=True):
    journey_id: int
    train: TrainRef
    origin: str = msgspec.field(name="from")
    destination: str = msgspec.field(name="to")
    departs_at: dt.datetime
    arrives_at: dt.datetime
    duration_min: int
    distance_km: int
    classes: list[ClassAvailability]


class SearchResult(msgspec.Struct, frozen=True, kw_only=True):
    origin: str = msgspec.field(name="from")
    destination: str = msgspec.field(name="to")
    date: dt.date
    journeys: list[JourneyOut]
