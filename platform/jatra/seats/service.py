"""Seat maps and holds: validate against the journey's layout, run the hold scripts, record in Postgres."""

from __future__ import annotations

import contextlib
import datetime as dt
import uuid

import structlog
from opentelemetry import trace
from redis.asyncio import Redis
from redis.exceptions import RedisError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from jatra.db.inventory import Hold
from jatra.errors import DependencyUnavailable, dependency_error
from jatra.infra.auth import Principal
from jatra.infra.pg import Statements
from jatra.inventory import resync
from jatra.inventory.holds import Conflicted, Ended, Extended, HoldStore, Limited, Refused, Resyncing
from jatra.inventory.segments import Segment
from jatra.inventory.status import HoldStatus
from jatra.seats import encoding, repository
from jatra.seats.errors import (
    HoldAtLimit,
    HoldBeingPaid,
    HoldExpired,
    HoldLimitReached,
    HoldNotFound,
    InvalidHold,
    SeatsResyncing,
    SeatsTaken,
)
from jatra.seats.repository import Layout
from jatra.seats.schemas import HeldSeat, HoldOut, HoldRequest, LiveHold
from jatra.settings import Settings
from jatra.telemetry import catalogue as c
from jatra.telemetry.metrics import counter

log = structlog.get_logger()
tracer = trace.get_tracer(__name__)
ATTEMPTS = counter(c.HOLD_ATTEMPTS)
OUTCOMES = counter(c.HOLD_OUTCOMES)
ENDED = counter(c.HOLD_ENDED)
EXTENDED = counter(c.HOLD_EXTENDED)
HOLD_RESULTS = ("acquired", "conflicted", "limited")
_classes_seen: set[str] = set()


def _count_attempt(seat_class: str) -> None:
    """Count a hold attempt; the first one of a class also creates that class's outcome and extension
    series at 0 (seat classes come from the timetable, so they cannot be listed in the catalogue)."""
    if seat_class not in _classes_seen:
        _classes_seen.add(seat_class)
        for outcome in HOLD_RESULTS:
            OUTCOMES.labels(outcome, seat_class)
        EXTENDED.labels(seat_class)
    ATTEMPTS.labels(seat_class).inc()


MAX_SEATS_PER_HOLD = 4


def _utc(ms: int) -> dt.datetime:
    return dt.datetime.fromtimestamp(ms / 1000, dt.UTC)


def class_label(layout: Layout, seat_ids: list[int]) -> str:
    classes = {layout.seats[s].seat_class for s in seat_ids}
    return classes.pop() if len(classes) == 1 else "mixed"


class SeatsService:
    def __init__(
        self, sessions: async_sessionmaker[AsyncSession], redis: Redis, settings: Settings, pg: Statements
    ) -> None:
        self.sessions = sessions  # opened only where the ORM is used: the hot path asks through ``pg``
        self.pg = pg
        self.store = HoldStore(redis)
        self.settings = settings

    async def _layout(self, journey_id: int, field: str = "journey_id") -> Layout:
        found = repository.cached_layout(journey_id)
        if found is None:  # the journey's first request in this process: read once, then kept
            async with self.sessions() as session:
                found = await repository.layout(session, journey_id)
        if found is None:
            raise InvalidHold(field, f"unknown journey {journey_id}")
        return found

    def _segment(self, layout: Layout, origin: str, destination: str) -> Segment:
        start, end = layout.index_of(origin.upper()), layout.index_of(destination.upper())
        if start is None:
            raise InvalidHold("from", f"train {layout.train_number} does not call at {origin!r}")
        if end is None:
            raise InvalidHold("to", f"train {layout.train_number} does not call at {destination!r}")
        if start >= end:
            raise InvalidHold("from", f"{origin} is at or after {destination} on this train's route")
        return Segment(start, end)

    async def seat_map(self, journey_id: int, origin: str, destination: str) -> bytes:
        """The seat map's JSON (a SeatMap): the segment's seats encoded once, live status from Redis."""
        layout = await self._layout(journey_id)
        segment = self._segment(layout, origin, destination)
        found = await self.store.occupancy(journey_id)
        sold = found.sold
        if not found.synced and layout.departure_from(segment.start) > dt.datetime.now(dt.UTC):
            sold = await self._sold_from_postgres(journey_id, found.sold)
        kept = encoding.encoded(layout, segment, origin.upper(), destination.upper())
        return encoding.render(kept, segment.mask, found.held, sold)

    async def _sold_from_postgres(self, journey_id: int, sold: dict[int, int]) -> dict[int, int]:
        """Redis has no synced marker for the journey (it lost its data, or never had the journey) and
        the train has not left the passenger's station: the seat map takes the sold legs from Postgres, so
        that no sold seat is shown free, and asks the reaper for the journey, as a refused hold does. The
        reaper restores it at its next pass. (A journey whose train has left the station takes no hold:
        its map is Redis's alone, and a marker expires a day after the journey.)"""
        with tracer.start_as_current_span("seats.seat_map.sold_from_postgres") as span:
            span.set_attribute("jatra.seats.journey_id", journey_id)
            async with self.sessions() as session:
                rows = await repository.sold_legs_of(session, [journey_id])
            merged = dict(sold)
            for _, seat, start, end in rows:
                merged[seat] = merged.get(seat, 0) | Segment(start, end).mask
            with contextlib.suppress(RedisError, OSError):  # the seat map is right all the same
                await resync.ask(self.store, journey_id)
            span.set_attribute("jatra.seats.sales", len(rows))
        log.info("seat_map.sold_from_postgres", journey_id=journey_id, sales=len(rows))
        return merged

    def _validate(self, layout: Layout, request: HoldRequest) -> Segment:
        segment = self._segment(layout, request.origin, request.destination)
        seats = request.seats
        if not 1 <= len(seats) <= MAX_SEATS_PER_HOLD:
            raise InvalidHold("seats", f"hold 1 to {MAX_SEATS_PER_HOLD} seats, not {len(seats)}")
        if len(set(seats)) != len(seats):
            raise InvalidHold("seats", f"duplicate seats in {seats}")
        unknown = [s for s in seats if s not in layout.seats]
        if unknown:
            raise InvalidHold("seats", f"seats {unknown} are not on train {layout.train_number}")
        if layout.departure_from(segment.start) <= dt.datetime.now(dt.UTC):
            raise InvalidHold("journey_id", f"the train has already left {request.origin}")
        return segment

    async def hold(self, who: Principal, request: HoldRequest) -> HoldOut:
        layout = await self._layout(request.journey_id)
        segment = self._validate(layout, request)
        seat_class = class_label(layout, request.seats)
        hold_id = uuid.uuid4()
        _count_attempt(seat_class)
        result = await self.store.hold(
            request.journey_id, hold_id, who.user_id, request.seats, segment.mask,
            ttl_s=self.settings.hold_ttl_s, max_seats=self.settings.hold_max_seats,
            max_live=self.settings.hold_max_live, seat_class=seat_class,
        )  # fmt: skip
        span = trace.get_current_span()
        if isinstance(result, Conflicted):
            OUTCOMES.labels("conflicted", seat_class).inc()
            span.add_event("hold.conflicted", {"jatra.seats.taken": len(result.seats)})
            log.info(
                "hold.conflicted", journey_id=request.journey_id, seats=request.seats, taken=result.seats
            )
            raise SeatsTaken(result.seats)
        if isinstance(result, Resyncing):
            OUTCOMES.labels("resyncing", seat_class).inc()
            log.info("hold.resyncing", journey_id=request.journey_id)
            with contextlib.suppress(RedisError, OSError):  # the hourly sweep finds it all the same
                await resync.ask(self.store, request.journey_id)
            raise SeatsResyncing
        if isinstance(result, Limited):
            OUTCOMES.labels("limited", seat_class).inc()
            log.info("hold.limited", journey_id=request.journey_id, limit=result.what, current=result.current)
            limit = self.settings.hold_max_live if result.what == "holds" else self.settings.hold_max_seats
            raise HoldLimitReached(
                f"an account may have {limit} {'live holds' if result.what == 'holds' else 'seats held'} "
                f"on one journey; you have {result.current}"
            )
        expires = _utc(result.expires_ms)
        record = repository.NewHold(
            id=hold_id,
            journey_id=request.journey_id,
            user_id=who.user_id,
            seat_ids=request.seats,
            from_seq=segment.start,
            to_seq=segment.end,
            seat_class=seat_class,
            status=HoldStatus.ACTIVE,
            expires_at=expires,
            total_fare=sum(
                layout.fare(layout.seats[s].seat_class, segment.start, segment.end) for s in request.seats
            ),
        )
        try:
            await repository.record_hold(self.pg, record)
        except Exception as exc:
            # Nothing half-done: without its Postgres record the hold must not live on in Redis.
            await self.store.release(request.journey_id, hold_id, who.user_id)
            log.exception("hold.record_failed", hold_id=str(hold_id))
            raise dependency_error(exc) or DependencyUnavailable("postgres") from exc
        OUTCOMES.labels("acquired", seat_class).inc()
        span.add_event("hold.acquired", {"jatra.hold.seats": len(request.seats)})
        log.info("hold.acquired", hold_id=str(hold_id), journey_id=request.journey_id, seats=request.seats,
                 segment=f"{request.origin}-{request.destination}", seat_class=seat_class)  # fmt: skip
        return self._out(layout, record, expires)

    def _out(self, layout: Layout, hold: Hold | repository.NewHold, expires: dt.datetime) -> HoldOut:
        seats = [
            HeldSeat(seat_id=s, coach=layout.seats[s].coach, number=layout.seats[s].number,
                     seat_class=layout.seats[s].seat_class,
                     fare=layout.fare(layout.seats[s].seat_class, hold.from_seq, hold.to_seq))
            for s in hold.seat_ids
        ]  # fmt: skip
        return HoldOut(
            hold_id=hold.id,
            journey_id=hold.journey_id,
            origin=layout.stops[hold.from_seq].code,
            destination=layout.stops[hold.to_seq].code,
            seats=seats,
            total_fare=sum(s.fare for s in seats),
            status=hold.status,
            expires_at=expires,
        )

    @staticmethod
    async def _owned(session: AsyncSession, who: Principal, hold_id: uuid.UUID) -> Hold:
        hold = await repository.get_hold(session, hold_id)
        if hold is None or hold.user_id != who.user_id:
            raise HoldNotFound
        return hold

    async def get(self, who: Principal, hold_id: uuid.UUID) -> HoldOut:
        async with self.sessions() as session:
            hold = await self._owned(session, who, hold_id)
        if hold.status == HoldStatus.ACTIVE and not await self.store.exists(hold.journey_id, hold.id):
            hold.status = HoldStatus.EXPIRED
        return self._out(await self._layout(hold.journey_id), hold, hold.expires_at)

    async def extend(self, who: Principal, hold_id: uuid.UUID) -> HoldOut:
        async with self.sessions() as session:
            hold = await self._owned(session, who, hold_id)
        if hold.status != HoldStatus.ACTIVE:
            raise HoldExpired if hold.status == HoldStatus.EXPIRED else HoldNotFound
        result = await self.store.extend(
            hold.journey_id, hold.id, who.user_id, self.settings.hold_ttl_s, self.settings.hold_max_total_s
        )
        if isinstance(result, Refused):
            if result.reason == "at_limit":
                raise HoldAtLimit(
                    f"holds last at most {self.settings.hold_max_total_s}s from when they were taken"
                )
            raise HoldExpired
        assert isinstance(result, Extended)
        expires = _utc(result.expires_ms)
        async with self.sessions() as session:
            await repository.set_expiry(session, hold.id, expires)
        EXTENDED.labels(result.seat_class).inc()
        trace.get_current_span().add_event("hold.extended")
        log.info("hold.extended", hold_id=str(hold.id), expires_at=expires.isoformat())
        hold.expires_at = expires
        return self._out(await self._layout(hold.journey_id), hold, expires)

    async def live_holds(self, journey_id: int) -> list[LiveHold]:
        """Live holds of one journey as Postgres records them (admin view)."""
        await self._layout(journey_id)
        async with self.sessions() as session:
            now = await repository.server_now(session)
            live = await repository.active_holds(session, now, journey_id=journey_id)
        return [
            LiveHold(hold_id=h.id, user_id=h.user_id, seats=h.seat_ids, from_seq=h.from_seq, to_seq=h.to_seq,
                     seat_class=h.seat_class, expires_at=h.expires_at)
            for h in live
        ]  # fmt: skip

    async def release(self, who: Principal, hold_id: uuid.UUID) -> None:
        async with self.sessions() as session:
            await self._release(session, who, hold_id)

    async def _release(self, session: AsyncSession, who: Principal, hold_id: uuid.UUID) -> None:
        hold = await self._owned(session, who, hold_id)
        if hold.status != HoldStatus.ACTIVE:
            return  # already over: releasing is idempotent
        status, booked = await repository.lock_for_release(session, hold.id)
        if status != HoldStatus.ACTIVE:
            return  # its payment ended it meanwhile (sold or freed): nothing left to release
        if booked:
            log.info("hold.release_refused", hold_id=str(hold.id), reason="being_paid")
            raise HoldBeingPaid
        result = await self.store.release(hold.journey_id, hold.id, who.user_id)
        now = dt.datetime.now(dt.UTC)
        if isinstance(result, Ended):
            await repository.end_hold(session, hold.id, HoldStatus.RELEASED, now)
            ENDED.labels("released", result.seat_class).inc()
            trace.get_current_span().add_event("hold.released")
            log.info("hold.released", hold_id=str(hold.id), seats=result.seats)
        else:
            await repository.end_hold(session, hold.id, HoldStatus.EXPIRED, now)
            ENDED.labels("expired", hold.seat_class).inc()
            log.info("hold.expired", hold_id=str(hold.id), noticed_by="release")
