"""Wire types of the seats API."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Annotated, Literal

import msgspec

from jatra.infra.inputs import JourneyId, SeatId, StationCode


class SeatOut(msgspec.Struct, frozen=True, kw_only=True):
    seat_id: int
    coach: str
    number: int
    seat_class: str = msgspec.field(name="class")
    fare: int
    status: Literal["free", "held", "sold"]


class SeatMap(msgspec.Struct, frozen=True, kw_only=True):
    journey_id: int
    origin: str = msgspec.field(name="from")
    destination: str = msgspec.field(name="to")
    departs_at: dt.datetime
    seats: list[SeatOut]


class HoldRequest(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    journey_id: JourneyId
    origin: StationCode = msgspec.field(name="from")
    destination: StationCode = msgspec.field(name="to")
    seats: Annotated[list[SeatId], msgspec.Meta(max_length=16)]


class HeldSeat(msgspec.Struct, frozen=True, kw_only=True):
    seat_id: int
    coach: str
    number: int
    seat_class: str = msgspec.field(name="class")
    fare: int


class LiveHold(msgspec.Struct, frozen=True, kw_only=True):
    """A live hold as on-call staff see it (admin only)."""

    hold_id: uuid.UUID
    user_id: uuid.UUID
    seats: list[int]
    from_seq: int
    to_seq: int
    seat_class: str = msgspec.field(name="class")
    expires_at: dt.datetime


class HoldOut(msgspec.Struct, frozen=True, kw_only=True):
    hold_id: uuid.UUID
    journey_id: int
    origin: str = msgspec.field(name="from")
    destination: str = msgspec.field(name="to")
    seats: list[HeldSeat]
    total_fare: int
    status: str
    expires_at: dt.datetime
