"""What an e-ticket shows, read in one place for the API (PDF, verify) and the notifications worker."""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass
from typing import Any, Protocol
from zoneinfo import ZoneInfo

from sqlalchemy import BigInteger, bindparam, text
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.ext.asyncio import AsyncSession

SIGNED_FIELDS = ("ticket_number", "booking_id", "journey_id", "train_number", "from", "to", "departs_at",
                 "seat_labels")  # fmt: skip


#: the catalogue's part of a ticket as a SELECT list over ``journeys j JOIN trains t``: the train, its stops
#: in order and the labels of the booking's seats (SEAT_IDS: see :func:`catalogue_columns`); the catalogue
#: never changes under a booking
_CATALOGUE_COLUMNS = """
    t.number AS train_number, t.name AS train_name, j.departs_at,
    (SELECT array_agg(ts.station_code ORDER BY ts.seq) FROM train_stops ts
     WHERE ts.train_number = t.number) AS stations,
    (SELECT array_agg(ts.depart_min ORDER BY ts.seq) FROM train_stops ts
     WHERE ts.train_number = t.number) AS depart_mins,
    (SELECT jsonb_object_agg(s.id, c.code || '-' || s.number) FROM seats s
     JOIN coaches c ON c.id = s.coach_id WHERE s.id = ANY(SEAT_IDS)) AS labels
    """


def catalogue_columns(seat_ids: str) -> str:
    """:data:`_CATALOGUE_COLUMNS` for the seats ``seat_ids`` names: a bound parameter or a column."""
    return _CATALOGUE_COLUMNS.replace("SEAT_IDS", seat_ids)


#: one booking's catalogue part, in one statement (it was four reads)
VIEW = (
    text(
        "SELECT"
        + catalogue_columns(":seat_ids")
        + "FROM journeys j JOIN trains t ON t.number = j.train_number WHERE j.id = :journey_id"
    )
    .bindparams(bindparam("seat_ids", type_=ARRAY(BigInteger)))
    .columns(labels=JSONB)
)


class TicketBooking(Protocol):
    """What a ticket shows of its booking (a Booking, or a row read with it)."""

    @property
    def id(self) -> uuid.UUID: ...
    @property
    def ticket_number(self) -> str | None: ...
    @property
    def journey_id(self) -> int: ...
    @property
    def from_seq(self) -> int: ...
    @property
    def to_seq(self) -> int: ...
    @property
    def seat_class(self) -> str: ...
    @property
    def seat_ids(self) -> list[int]: ...
    @property
    def passengers(self) -> list[dict[str, Any]]: ...
    @property
    def amount(self) -> int: ...


class Catalogue(Protocol):
    """The columns of :func:`catalogue_columns`."""

    @property
    def train_number(self) -> int: ...
    @property
    def train_name(self) -> str: ...
    @property
    def departs_at(self) -> dt.datetime: ...
    @property
    def stations(self) -> list[str]: ...
    @property
    def depart_mins(self) -> list[int | None]: ...
    @property
    def labels(self) -> dict[str, str]: ...


@dataclass(frozen=True, slots=True)
class TicketRow:
    """A booking as its ticket shows it (a :class:`TicketBooking`), with its owner and status, read as one
    row: the API's download and the notifications worker's notice. The catalogue part comes from
    jatra.tickets.catalogue."""

    id: uuid.UUID
    user_id: uuid.UUID
    status: str
    ticket_number: str | None
    journey_id: int
    seat_ids: list[int]
    from_seq: int
    to_seq: int
    seat_class: str
    passengers: list[dict[str, Any]]
    amount: int


#: the columns of a :class:`TicketRow` in a SELECT over ``bookings b``
TICKET_ROW_COLUMNS = """b.id, b.user_id, b.status, b.ticket_number, b.journey_id, b.seat_ids, b.from_seq,
    b.to_seq, b.seat_class, b.passengers, b.amount"""


async def ticket_view(session: AsyncSession, booking: TicketBooking, tz: str) -> dict[str, Any]:
    row = (
        await session.execute(VIEW, {"journey_id": booking.journey_id, "seat_ids": booking.seat_ids})
    ).one()
    return compose_view(booking, row, tz)


def compose_view(booking: TicketBooking, row: Catalogue, tz: str) -> dict[str, Any]:
    """The ticket's view from its booking and its catalogue part (its labels keyed by seat id as text: the
    booking's seats, or every seat of the train)."""
    stops = list(zip(row.stations, row.depart_mins, strict=True))
    from_code, depart_min = stops[booking.from_seq]
    departs = (row.departs_at + dt.timedelta(minutes=depart_min or 0)).astimezone(ZoneInfo(tz))
    return {
        "ticket_number": booking.ticket_number,
        "booking_id": str(booking.id),
        "journey_id": booking.journey_id,
        "train_number": row.train_number,
        "train_name": row.train_name,
        "from": from_code,
        "to": stops[booking.to_seq][0],
        "departs_at": departs.isoformat(timespec="minutes"),
        "class": booking.seat_class,
        "seats": booking.seat_ids,
        "seat_labels": [row.labels[str(s)] for s in booking.seat_ids],
        "passengers": booking.passengers,
        "amount": booking.amount,
    }


def qr_payload(view: dict[str, Any]) -> dict[str, Any]:
    """The signed part: what a checker needs offline, and no more."""
    return {key: view[key] for key in SIGNED_FIELDS} | {"names": [p["name"] for p in view["passengers"]]}
