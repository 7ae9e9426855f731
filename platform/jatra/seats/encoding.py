"""The seat map encoded once per journey segment; a request patches only the seats someone holds or bought.

A train's layout and fares never change, so the JSON of every seat as "free" is made once per (journey,
segment) and kept; a request copies that list, rewrites the status of the occupied seats (a few dozen of
~900 on a busy train) and joins it. Building ~900 structs and encoding them on every request was 29 % of an
API process's CPU samples under a read mix (py-spy; bench/results/HISTORY.md, "The seat map encoded once").
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import msgspec

from jatra.infra.lru import Lru
from jatra.inventory.segments import Segment
from jatra.seats.repository import Layout
from jatra.seats.schemas import SeatMap, SeatOut

#: a kept segment is ~130 KB (900 seats); a rush asks for a few hundred segments at most
CACHE_SIZE = 128
FREE = b'"free"}'
STATUS = {"held": b'"held"}', "sold": b'"sold"}'}


@dataclass(frozen=True, slots=True)
class EncodedSegment:
    #: the map up to and including the opening bracket of its seat list
    head: bytes
    #: every seat's JSON with status "free", in the layout's order
    free: list[bytes]
    #: seat id -> its place in ``free``
    position: dict[int, int]


_segments: Lru[tuple[int, int, int], EncodedSegment] = Lru(CACHE_SIZE)


def _encode(layout: Layout, segment: Segment, origin: str, destination: str) -> EncodedSegment:
    # one fare per class of this train, not per seat
    fares = {
        c: layout.fare(c, segment.start, segment.end) for c in {s.seat_class for s in layout.seats.values()}
    }
    empty = SeatMap(
        journey_id=layout.journey_id,
        origin=origin,
        destination=destination,
        departs_at=layout.departure_from(segment.start),
        seats=[],
    )
    head = msgspec.json.encode(empty)
    if not head.endswith(b"[]}"):  # the seat list is the struct's last field
        raise AssertionError("SeatMap's last field must be its seat list")
    free = [
        msgspec.json.encode(
            SeatOut(seat_id=s.seat_id, coach=s.coach, number=s.number, seat_class=s.seat_class,
                    fare=fares[s.seat_class], status="free")
        )
        for s in layout.seats.values()
    ]  # fmt: skip
    return EncodedSegment(head[:-2], free, {seat_id: i for i, seat_id in enumerate(layout.seats)})


def encoded(layout: Layout, segment: Segment, origin: str, destination: str) -> EncodedSegment:
    key = (layout.journey_id, segment.start, segment.end)
    if (found := _segments.get(key)) is not None:
        return found
    return _segments.put(key, _encode(layout, segment, origin, destination))


def status_of(
    seat_id: int, mask: int, held: dict[int, list[tuple[int, int]]], sold: dict[int, int]
) -> Literal["free", "held", "sold"]:
    if sold.get(seat_id, 0) & mask:
        return "sold"
    if any(m & mask for m, _ in held.get(seat_id, ())):
        return "held"
    return "free"


def render(
    segment: EncodedSegment, mask: int, held: dict[int, list[tuple[int, int]]], sold: dict[int, int]
) -> bytes:
    """The map's JSON: the kept "free" seats with the occupied ones' status rewritten."""
    seats = segment.free.copy()
    for seat_id in held.keys() | sold.keys():
        i = segment.position.get(seat_id)
        if i is None:  # a seat of another layout (a stale Redis field)
            continue
        status = status_of(seat_id, mask, held, sold)
        if status != "free":
            seats[i] = seats[i][: -len(FREE)] + STATUS[status]
    return segment.head + b",".join(seats) + b"]}"
