"""The seat map encoded once per segment says exactly what encoding every seat on each request said."""

from __future__ import annotations

import datetime as dt
import random
from decimal import Decimal

import msgspec
import pytest

from jatra.inventory.fares import FareRule
from jatra.inventory.segments import Segment
from jatra.seats import encoding
from jatra.seats.repository import Layout, SeatInfo, Stop
from jatra.seats.schemas import SeatMap, SeatOut

STOPS = (Stop("DA", 0, 0), Stop("BBT", 80, 70), Stop("AKH", 190, 150), Stop("CGP", 320, None))
RULES = {
    "S_CHAIR": FareRule("S_CHAIR", Decimal("1.15"), 50, 0),
    "SNIGDHA": FareRule("SNIGDHA", Decimal("2.3"), 100, 15),
}


def layout(journey_id: int) -> Layout:
    seats = {
        i: SeatInfo(i, f"{'KA' if i < 60 else 'CHA'}", i % 60 + 1, "S_CHAIR" if i < 60 else "SNIGDHA")
        for i in range(1000 + journey_id * 100, 1000 + journey_id * 100 + 90)
    }
    return Layout(journey_id, 701, dt.datetime(2026, 12, 1, 1, 0, tzinfo=dt.UTC), STOPS, seats, RULES)


def reference(
    lay: Layout, seg: Segment, held: dict[int, list[tuple[int, int]]], sold: dict[int, int]
) -> bytes:
    """What the service did before: a struct per seat, encoded whole."""
    seats = [
        SeatOut(seat_id=s.seat_id, coach=s.coach, number=s.number, seat_class=s.seat_class,
                fare=lay.fare(s.seat_class, seg.start, seg.end),
                status=encoding.status_of(s.seat_id, seg.mask, held, sold))
        for s in lay.seats.values()
    ]  # fmt: skip
    origin, destination = lay.stops[seg.start].code, lay.stops[seg.end].code
    return msgspec.json.encode(
        SeatMap(journey_id=lay.journey_id, origin=origin, destination=destination,
                departs_at=lay.departure_from(seg.start), seats=seats)
    )  # fmt: skip


@pytest.mark.parametrize("seed", range(20))
def test_the_kept_encoding_matches_encoding_each_seat(seed: int) -> None:
    rng = random.Random(seed)
    lay = layout(seed % 3)  # journeys met again: the kept encoding is reused with new occupancy
    start = rng.randrange(3)
    seg = Segment(start, rng.randrange(start + 1, 4))
    ids = list(lay.seats)
    held = {s: [(Segment(a, a + 1).mask, 0) for a in rng.sample(range(3), rng.randint(1, 2))]
            for s in rng.sample(ids, rng.randint(0, 30))}  # fmt: skip
    sold = {s: rng.choice([1, 2, 4, 3, 6, 7]) for s in rng.sample(ids, rng.randint(0, 40))}
    sold[999_999] = 7  # a seat of another layout (stale Redis key) is left out, as before
    kept = encoding.encoded(lay, seg, lay.stops[seg.start].code, lay.stops[seg.end].code)
    body = encoding.render(kept, seg.mask, held, sold)
    assert body == reference(lay, seg, held, sold)
    statuses = {s["status"] for s in msgspec.json.decode(body)["seats"]}
    assert statuses <= {"free", "held", "sold"}


def test_a_request_does_not_change_the_kept_encoding() -> None:
    lay, seg = layout(7), Segment(0, 3)
    kept = encoding.encoded(lay, seg, "DA", "CGP")
    first_seat = next(iter(lay.seats))
    sold_map = encoding.render(kept, seg.mask, {}, {first_seat: seg.mask})
    assert b'"sold"' in sold_map
    assert b'"sold"' not in encoding.render(encoding.encoded(lay, seg, "DA", "CGP"), seg.mask, {}, {})


def test_each_status_is_written_where_the_segment_meets_the_occupancy() -> None:
    lay, seg = layout(8), Segment(1, 2)  # BBT -> AKH: leg 1 only
    a, b, c, d = list(lay.seats)[:4]
    held = {a: [(Segment(1, 2).mask, 0)], b: [(Segment(0, 1).mask, 0)]}  # b's hold is another leg
    sold = {c: Segment(0, 3).mask, d: Segment(2, 3).mask}  # d was sold for a later leg
    seats = msgspec.json.decode(
        encoding.render(encoding.encoded(lay, seg, "BBT", "AKH"), seg.mask, held, sold)
    )
    status = {s["seat_id"]: s["status"] for s in seats["seats"]}
    assert (status[a], status[b], status[c], status[d]) == ("held", "free", "sold", "free")
    assert seats["from"] == "BBT" and seats["to"] == "AKH" and len(status) == 90
