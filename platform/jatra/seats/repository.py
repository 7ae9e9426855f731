"""Seats queries: a journey's layout (stops, seats, fares) and the Postgres record of holds."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, fields
from decimal import Decimal

from sqlalchemy import func, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession

from jatra.db.catalog import Coach, Journey, Seat, SeatClass, Train, TrainStop
from jatra.db.inventory import Hold, SeatSale
from jatra.infra.lru import Lru
from jatra.infra.pg import Statements
from jatra.inventory.fares import FareRule
from jatra.inventory.status import HoldStatus


@dataclass(frozen=True, slots=True)
class SeatInfo:
    seat_id: int
    coach: str
    number: int
    seat_class: str


@dataclass(frozen=True, slots=True)
class Stop:
    code: str
    distance_km: int
    depart_min: int | None


@dataclass(frozen=True, slots=True)
class Layout:
    journey_id: int
    train_number: int
    departs_at: dt.datetime
    stops: tuple[Stop, ...]
    seats: dict[int, SeatInfo]
    rules: dict[str, FareRule]

    def index_of(self, code: str) -> int | None:
        return next((i for i, s in enumerate(self.stops) if s.code == code), None)

    def departure_from(self, index: int) -> dt.datetime:
        return self.departs_at + dt.timedelta(minutes=self.stops[index].depart_min or 0)

    def fare(self, seat_class: str, start: int, end: int) -> int:
        return self.rules[seat_class].fare(self.stops[end].distance_km - self.stops[start].distance_km)


@dataclass(frozen=True, slots=True)
class TrainLayout:
    """What every journey of a train shares: its stops, its seats and the fares of its classes."""

    stops: tuple[Stop, ...]
    seats: dict[int, SeatInfo]
    rules: dict[str, FareRule]


#: the layouts in this process, least recently used first. A train's never changes once seeded, so it is
#: read once per process and train, not once per journey (a train runs every day of the window).
_trains: Lru[int, TrainLayout] = Lru(512)  # 76 trains are seeded
_layouts: Lru[int, Layout] = Lru(256)


async def train_layout(session: AsyncSession, train_number: int) -> TrainLayout:
    if (cached := _trains.get(train_number)) is not None:
        return cached
    found = await _read_trains(session, [train_number])
    return _trains.put(train_number, found[train_number])


async def preload_trains(session: AsyncSession) -> int:
    """Every train's layout read into the cache at once (four statements, not three a train), as many as
    it keeps; how many trains."""
    numbers = (await session.scalars(select(Train.number).order_by(Train.number).limit(_trains.size))).all()
    for number, layout in (await _read_trains(session, numbers)).items():
        _trains.put(number, layout)
    return len(numbers)


async def _read_trains(session: AsyncSession, numbers: Sequence[int]) -> dict[int, TrainLayout]:
    """The layouts of these trains, in three statements whatever their number."""
    stops: dict[int, list[Stop]] = {n: [] for n in numbers}
    for number, code, km, dep in await session.execute(
        select(TrainStop.train_number, TrainStop.station_code, TrainStop.distance_km, TrainStop.depart_min)
        .where(TrainStop.train_number.in_(numbers))
        .order_by(TrainStop.train_number, TrainStop.seq)
    ):
        stops[number].append(Stop(code, km, dep))
    seats: dict[int, dict[int, SeatInfo]] = {n: {} for n in numbers}
    for number, sid, coach, seat_number, cls in await session.execute(
        select(Coach.train_number, Seat.id, Coach.code, Seat.number, Coach.seat_class)
        .join(Coach, Coach.id == Seat.coach_id)
        .where(Coach.train_number.in_(numbers))
        .order_by(Coach.train_number, Coach.position, Seat.number)
    ):
        seats[number][sid] = SeatInfo(sid, coach, seat_number, cls)
    rules = await _fare_rules(session)
    return {n: TrainLayout(stops=tuple(stops[n]), seats=seats[n], rules=rules) for n in numbers}


async def _fare_rules(session: AsyncSession) -> dict[str, FareRule]:
    classes = (await session.scalars(select(SeatClass))).all()
    return {k.code: FareRule(k.code, Decimal(k.rate_per_km), k.minimum_fare, k.vat_percent) for k in classes}


def cached_layout(journey_id: int) -> Layout | None:
    """The journey's layout if this process has read it already (no database asked)."""
    return _layouts.get(journey_id)


async def layout(session: AsyncSession, journey_id: int) -> Layout | None:
    """The journey's layout: its departure and its train's layout, both cached for the process lifetime."""
    if (cached := cached_layout(journey_id)) is not None:
        return cached
    journey = (
        await session.execute(
            select(Journey.train_number, Journey.departs_at).where(Journey.id == journey_id)
        )
    ).first()
    if journey is None:
        return None
    train = await train_layout(session, journey.train_number)
    found = Layout(
        journey_id=journey_id,
        train_number=journey.train_number,
        departs_at=journey.departs_at,
        stops=train.stops,
        seats=train.seats,
        rules=train.rules,
    )
    return _layouts.put(journey_id, found)


@dataclass(frozen=True, slots=True)
class NewHold:
    """A hold's record as the hold request writes it: plain values, no ORM object (one took 10.6-12.6 µs
    to build with SQLAlchemy's instrumentation, this 1.2-1.5, bench/results/hold-record/), for a row that
    never enters a session."""

    id: uuid.UUID
    journey_id: int
    user_id: uuid.UUID
    seat_ids: list[int]
    from_seq: int
    to_seq: int
    seat_class: str
    status: HoldStatus
    expires_at: dt.datetime
    total_fare: int


_NEW_HOLD_FIELDS = tuple(f.name for f in fields(NewHold))
#: a hold's record, in one exchange and its own transaction (jatra.infra.pg): it was the ORM's add and a
#: commit (BEGIN, the insert prepared again behind PgBouncer, COMMIT)
RECORD = """
    INSERT INTO holds (id, journey_id, user_id, seat_ids, from_seq, to_seq, seat_class, total_fare, status,
                       expires_at)
    VALUES (%(id)s, %(journey_id)s, %(user_id)s, %(seat_ids)s, %(from_seq)s, %(to_seq)s, %(seat_class)s,
            %(total_fare)s, %(status)s, %(expires_at)s)
    RETURNING id
    """


@dataclass(frozen=True, slots=True)
class _Recorded:
    id: uuid.UUID


async def record_hold(pg: Statements, hold: NewHold) -> None:
    """Record ``hold``, in its own transaction."""
    params = {name: getattr(hold, name) for name in _NEW_HOLD_FIELDS}
    await pg.one(RECORD, params, _Recorded)


async def get_hold(session: AsyncSession, hold_id: uuid.UUID) -> Hold | None:
    return await session.get(Hold, hold_id)


async def lock_for_release(session: AsyncSession, hold_id: uuid.UUID) -> tuple[str | None, bool]:
    """Lock the hold's row until the session's transaction ends: its status now, and whether a booking has
    it. A booking's insert waits on that lock (its foreign key takes a share of it), so none can slip in
    between this answer and the hold's end; one committed before is seen here, as is a payment that ended
    the hold since it was read."""
    status = await session.scalar(select(Hold.status).where(Hold.id == hold_id).with_for_update())
    booked = await session.scalar(
        text("SELECT EXISTS (SELECT 1 FROM bookings WHERE hold_id = :h)"), {"h": hold_id}
    )
    return status, bool(booked)


async def end_hold(session: AsyncSession, hold_id: uuid.UUID, status: HoldStatus, now: dt.datetime) -> None:
    await session.execute(
        update(Hold)
        .where(Hold.id == hold_id, Hold.status == HoldStatus.ACTIVE)
        .values(status=status, ended_at=now)
    )
    await session.commit()


async def set_expiry(session: AsyncSession, hold_id: uuid.UUID, expires_at: dt.datetime) -> None:
    await session.execute(update(Hold).where(Hold.id == hold_id).values(expires_at=expires_at))
    await session.commit()


async def expire_overdue(session: AsyncSession, now: dt.datetime) -> list[Hold]:
    """Mark ACTIVE holds past their expiry as EXPIRED; return them."""
    stmt = (
        update(Hold)
        .where(Hold.status == HoldStatus.ACTIVE, Hold.expires_at <= now)
        .values(status=HoldStatus.EXPIRED, ended_at=now)
        .returning(Hold)
    )
    return list((await session.scalars(stmt)).all())


async def active_holds(
    session: AsyncSession, now: dt.datetime, limit: int = 5000, journey_id: int | None = None
) -> list[Hold]:
    stmt = select(Hold).where(Hold.status == HoldStatus.ACTIVE, Hold.expires_at > now)
    if journey_id is not None:
        stmt = stmt.where(Hold.journey_id == journey_id)
    return list((await session.scalars(stmt.order_by(Hold.expires_at).limit(limit))).all())


async def mark_lost(session: AsyncSession, hold_ids: list[uuid.UUID], now: dt.datetime) -> None:
    await session.execute(
        update(Hold)
        .where(Hold.id.in_(hold_ids), Hold.status == HoldStatus.ACTIVE)
        .values(status=HoldStatus.EXPIRED, ended_at=now)
    )


async def live_counts(session: AsyncSession, now: dt.datetime) -> dict[str, tuple[int, int]]:
    """(live holds, seats held) per class, for the gauges."""
    stmt = (
        select(Hold.seat_class, func.count(), func.coalesce(func.sum(func.cardinality(Hold.seat_ids)), 0))
        .where(Hold.status == HoldStatus.ACTIVE, Hold.expires_at > now)
        .group_by(Hold.seat_class)
    )
    return {cls: (int(n), int(seats)) for cls, n, seats in (await session.execute(stmt)).all()}


async def sales_after(
    session: AsyncSession, after_id: int, limit: int = 5000
) -> list[tuple[int, int, int, int, int]]:
    """(sale id, journey, seat, first leg, end leg) of sales recorded after ``after_id``, oldest first."""
    rows = await session.execute(
        select(SeatSale.id, SeatSale.journey_id, SeatSale.seat_id, SeatSale.legs)
        .where(SeatSale.id > after_id)
        .order_by(SeatSale.id)
        .limit(limit)
    )
    return [(sid, journey, seat, legs.lower, legs.upper) for sid, journey, seat, legs in rows.all()]


#: a cancelled booking with its seats' legs sold in Postgres now, as :class:`Unsold`
_UNSOLD = """
    SELECT b.id, b.journey_id, b.seat_ids, b.from_seq, b.to_seq,
           j.departs_at + make_interval(mins => coalesce(
               (SELECT t.depart_min FROM train_stops t
                WHERE t.train_number = j.train_number AND t.seq = b.to_seq - 1), 0)) > now() AS ahead,
           coalesce((SELECT array_agg(ARRAY[s.seat_id, lower(s.legs), upper(s.legs)])
                     FROM seat_sales s
                     WHERE s.journey_id = b.journey_id AND s.seat_id = ANY (b.seat_ids)), '{}') AS sold
    FROM bookings b JOIN journeys j ON j.id = b.journey_id
"""
#: cancellations whose seats their request could not put back on sale in Redis (flagged, and left to the
#: request for ``grace`` seconds)
UNSELL_PENDING = (
    _UNSOLD
    + """
    WHERE b.unsell_pending AND b.updated_at < now() - make_interval(secs => :grace)
    LIMIT :limit
"""
)
#: bookings of some journeys cancelled at or after a moment: a resync that read their sales before the
#: cancellation may have written them back after it freed them
CANCELLED_SINCE = (
    _UNSOLD
    + """
    WHERE b.status IN ('CANCELLED', 'REFUNDED') AND b.updated_at >= :since
      AND b.journey_id = ANY (CAST(:journeys AS bigint[]))
"""
)


@dataclass(frozen=True, slots=True)
class Unsold:
    booking_id: uuid.UUID
    journey_id: int
    seat_ids: list[int]
    from_seq: int
    to_seq: int
    #: the train has not left the booking's last boarding stop: its seats are worth putting back on sale
    ahead: bool
    #: [seat, first leg, end leg] of each sale Postgres has of these seats now
    sold: list[list[int]]


async def unsell_pending(session: AsyncSession, grace_s: float, limit: int) -> list[Unsold]:
    rows = await session.execute(text(UNSELL_PENDING), {"grace": grace_s, "limit": limit})
    return [Unsold(*row) for row in rows.all()]


async def cancelled_since(session: AsyncSession, journeys: Sequence[int], since: dt.datetime) -> list[Unsold]:
    rows = await session.execute(text(CANCELLED_SINCE), {"since": since, "journeys": list(journeys)})
    return [Unsold(*row) for row in rows.all()]


async def unsell_finished(session: AsyncSession, booking_ids: list[uuid.UUID]) -> None:
    await session.execute(
        text("UPDATE bookings SET unsell_pending = false WHERE id = ANY (:ids) AND unsell_pending"),
        {"ids": booking_ids},
    )
    await session.commit()


async def server_now(session: AsyncSession) -> dt.datetime:
    now: dt.datetime = (await session.execute(text("SELECT now()"))).scalar_one()
    return now


async def last_sale_before(session: AsyncSession, before: dt.datetime) -> int:
    """The highest sale id among sales recorded before ``before`` (0 if none)."""
    query = select(func.max(SeatSale.id)).where(SeatSale.sold_at < before)
    last: int | None = (await session.execute(query)).scalar_one()
    return last or 0


async def sold_since(session: AsyncSession, since: dt.datetime) -> list[tuple[int, int, int, int]]:
    """(journey, seat, first leg, end leg) of every sale recorded at or after ``since``."""
    # by id, which the primary key orders: the last sale before ``since`` is a short backward scan of it
    before = select(func.coalesce(func.max(SeatSale.id), 0)).where(SeatSale.sold_at < since).scalar_subquery()
    query = select(SeatSale.journey_id, SeatSale.seat_id, SeatSale.legs).where(SeatSale.id > before)
    rows = await session.execute(query)
    return [(journey, seat, legs.lower, legs.upper) for journey, seat, legs in rows.all()]


async def longest_run(session: AsyncSession) -> dt.timedelta:
    """From a train's first departure to its last stop's, the longest of any train: a journey takes holds
    from later stations until then."""
    minutes: int | None = (await session.execute(select(func.max(TrainStop.depart_min)))).scalar_one()
    return dt.timedelta(minutes=minutes or 0)


async def sellable_journeys(
    session: AsyncSession, since: dt.datetime, among: Sequence[int] | None = None
) -> list[tuple[int, dt.datetime]]:
    """(journey, first departure) of journeys that left their first station after ``since`` (now, less the
    longest run), soonest first; only ``among`` if given."""
    query = select(Journey.id, Journey.departs_at).where(Journey.departs_at > since)
    if among is not None:
        query = query.where(Journey.id.in_(among))
    rows = await session.execute(query.order_by(Journey.departs_at, Journey.id))
    return [(journey, departs) for journey, departs in rows.all()]


#: the sold legs of some journeys, by journey and seat: one index probe per journey (the exclusion
#: constraint's GiST index leads with journey_id; it takes no ``= ANY``, a join on the array it does)
SOLD_LEGS_OF = """
    SELECT s.journey_id, s.seat_id, lower(s.legs), upper(s.legs)
    FROM unnest(CAST(:journeys AS bigint[])) AS j(id) JOIN seat_sales s ON s.journey_id = j.id
"""


async def sold_legs_of(session: AsyncSession, journeys: Sequence[int]) -> list[tuple[int, int, int, int]]:
    """(journey, seat, first leg, end leg) of every sale Postgres records of ``journeys``."""
    rows = await session.execute(text(SOLD_LEGS_OF), {"journeys": list(journeys)})
    return [(journey, seat, start, end) for journey, seat, start, end in rows.all()]
