"""Bookings: accept a hold for payment (idempotently, booking + outbox in one transaction), and read them."""

from __future__ import annotations

import base64
import datetime as dt
import uuid
from dataclasses import dataclass
from typing import Any

import msgspec
import structlog
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from opentelemetry import trace
from redis.asyncio import Redis
from redis.exceptions import RedisError
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from jatra.bookings import repository
from jatra.bookings.errors import BookingNotFound, BookingStateConflict, HoldNotBookable, InvalidBooking
from jatra.bookings.schemas import (
    PAYMENT_METHODS,
    BookingOut,
    BookingPage,
    BookingRequest,
    PassengerIn,
)
from jatra.db.bookings import Booking
from jatra.domain import refunds
from jatra.domain.booking_states import BookingStatus, Settled, transition
from jatra.errors import JatraError
from jatra.infra import idempotency, outbox, topology
from jatra.infra.auth import Principal
from jatra.infra.doorbell import Doorbell
from jatra.infra.pg import Statements
from jatra.inventory.holds import HoldStore
from jatra.inventory.segments import Segment
from jatra.inventory.status import HoldStatus
from jatra.telemetry import catalogue as c
from jatra.telemetry.metrics import counter, gauge
from jatra.tickets import cache
from jatra.tickets.catalogue import journey_catalogue
from jatra.tickets.view import compose_view, ticket_view

log = structlog.get_logger()
tracer = trace.get_tracer(__name__)
CREATED = counter(c.BOOKINGS_CREATED)
WAITS = counter(c.BOOKING_WAITS)
WAITING = gauge(c.BOOKING_WAITING)
#: a booking still on its way through payment: a long poll waits on these
IN_PAYMENT = frozenset({BookingStatus.PAYMENT_PENDING, BookingStatus.PAYMENT_PROCESSING})


def to_out(b: Booking) -> BookingOut:
    return BookingOut(
        booking_id=b.id, status=b.status, reason=b.reason, journey_id=b.journey_id, seats=b.seat_ids,
        passengers=msgspec.convert(b.passengers, list[PassengerIn]), payment_method=b.payment_method,
        amount=b.amount, ticket_number=b.ticket_number, refund_amount=b.refund_amount,
        created_at=b.created_at,
    )  # fmt: skip


@dataclass(frozen=True, slots=True)
class Reach:
    """What a few reads need besides the stores: the doorbell a long poll waits on, the key that signs a
    ticket drawn here, the timezone of its times and of the refund rule. Part of the service, not
    dependencies of their own: Litestar resolves two or more dependencies of a handler in an anyio task
    group, per request."""

    settled_bell: Doorbell
    ticket_key: Ed25519PrivateKey
    tz: str


class BookingsService:
    def __init__(
        self, sessions: async_sessionmaker[AsyncSession], redis: Redis, pg: Statements, reach: Reach
    ) -> None:
        self.sessions = sessions  # opened only where the ORM is used: the hot path asks through ``pg``
        self.redis = redis
        self.pg = pg
        self.reach = reach
        self.holds = HoldStore(redis)

    async def create(
        self, who: Principal, key: str, request: BookingRequest
    ) -> tuple[int, dict[str, object], bool]:
        """(status, body, replayed). Runs at most once per Idempotency-Key: the key is claimed in the
        booking's own statement, and a retry sent meanwhile waits for it in Postgres, then replays."""
        if request.payment_method not in PAYMENT_METHODS:
            raise InvalidBooking("payment_method", f"one of {', '.join(PAYMENT_METHODS)}")
        digest = idempotency.request_hash(msgspec.to_builtins(request))
        booking_id = uuid.uuid4()
        accepted = await self._accept(who, key, digest, booking_id, request)
        if accepted is None:  # rolled back: the key is taken, or the hold cannot be booked
            found = await idempotency.seen(self.pg, who.user_id, key, digest)
            if found is None and (refusal := await self._refusal(who, request)) is not None:
                raise refusal
            # Claimed again once: a stale key is deleted first; no key with a bookable hold means the key
            # refused it and is gone since (expired, and deleted by the relay's retention meanwhile).
            if found is None or isinstance(found, idempotency.Stale):
                accepted = await self._accept(who, key, digest, booking_id, request, stale=found is not None)
                if accepted is None:  # refused for the hold (the delete went with it), or another's replay
                    found = await idempotency.seen(self.pg, who.user_id, key, digest)
            if isinstance(found, idempotency.Replay):
                return found.status, found.body, True
            if accepted is None:
                raise await self._refusal(who, request) or HoldNotBookable("the hold is expired")
        idempotency.claimed()
        amount = int(accepted.body["amount"])
        CREATED.labels(request.payment_method).inc()
        trace.get_current_span().add_event("booking.created", {"jatra.booking.amount": amount})
        log.info("booking.created", booking_id=str(booking_id), hold_id=str(request.hold_id), amount=amount,
                 method=request.payment_method)  # fmt: skip
        return 202, accepted.body, False

    async def _accept(
        self,
        who: Principal,
        key: str,
        digest: str,
        booking_id: uuid.UUID,
        request: BookingRequest,
        stale: bool = False,
    ) -> repository.Accepted | None:
        """The key claimed and the booking written, committed; None (rolled back) if not. ``stale``: the key
        was found stale, and is deleted first in the same transaction."""
        async with self.pg.transaction() as tx:
            if stale:
                await idempotency.forget_stale(tx, who.user_id, key)
            accepted = await repository.accept(
                tx, booking_id=booking_id, user_id=who.user_id, key=key, digest=digest,
                hold_id=request.hold_id, seats=len(request.passengers),
                passengers=[msgspec.to_builtins(p) for p in request.passengers],
                method=request.payment_method, email=request.email,
                payment=outbox.draft(topology.PAYMENTS, "payment.requested"),
            )  # fmt: skip
            # Redis: did the hold outlive the statement? (an expired or released hold rolls it back)
            if accepted is not None and not await self.holds.exists(accepted.journey_id, request.hold_id):
                raise HoldNotBookable("the hold is expired")
        return accepted

    async def _refusal(self, who: Principal, request: BookingRequest) -> JatraError | None:
        """Why the hold cannot be booked, as precisely as it allows (the error path only); None when
        Postgres has it ACTIVE, unbooked and of this size: then only the key refused the booking."""
        async with self.sessions() as session:
            hold, booked = await repository.hold_of(session, request.hold_id)
        if hold is None or hold.user_id != who.user_id:
            return InvalidBooking("hold_id", "no such hold")  # not yours reads the same as unknown
        if not 1 <= len(request.passengers) == len(hold.seat_ids):
            return InvalidBooking(
                "passengers",
                f"one passenger per held seat: {len(hold.seat_ids)}, not {len(request.passengers)}",
            )
        if booked:
            return HoldNotBookable("this hold is already booked")
        if hold.status != HoldStatus.ACTIVE:
            return HoldNotBookable(f"the hold is {hold.status.lower()}")
        return None

    async def outcome(self, who: Principal, booking_id: uuid.UUID) -> BookingOut:
        """One of your bookings as you see it: one statement, no ORM object, no session."""
        found = await repository.outcome(self.pg, booking_id)
        if found is None or found.user_id != who.user_id:
            raise BookingNotFound
        return msgspec.convert(found, BookingOut, from_attributes=True)

    async def settled(self, who: Principal, booking_id: uuid.UUID, wait_s: float) -> BookingOut:
        """One of your bookings, once its payment has settled or after ``wait_s`` seconds, whichever comes
        first (a long poll: the passenger asks once instead of polling). The database connection goes back
        to the pool while waiting; the payment worker rings the doorbell when it settles a booking, with the
        new status, so the answer needs no second read. No connection is held while waiting."""
        key, bell = str(booking_id), self.reach.settled_bell
        ready = await bell.expect(key) if wait_s > 0 else None
        try:
            seen = await self.outcome(who, booking_id)
            if ready is None or seen.status not in IN_PAYMENT:
                WAITS.labels("none" if ready is None else "already").inc()
                return seen
            with tracer.start_as_current_span("bookings.wait") as span, WAITING.track_inprogress():
                rung, note = await bell.wait(key, wait_s, ready)
                span.set_attribute("jatra.booking.wait_outcome", "rung" if rung else "timeout")
            WAITS.labels("rung" if rung else "timeout").inc()
            if note is not None:
                changed = msgspec.json.decode(note, type=Settled)
                return msgspec.structs.replace(seen, **msgspec.structs.asdict(changed))
            return await self.outcome(who, booking_id)  # no note: read the truth
        finally:
            if ready is not None:
                bell.cancel(key, ready)

    async def cancel(self, who: Principal, booking_id: uuid.UUID) -> Booking:
        """Cancel a confirmed booking: seats back on sale, refund by the fare rule, through the outbox."""
        async with self.sessions() as session:
            return await self._cancel(session, who, booking_id, self.reach.tz)

    async def _cancel(self, session: AsyncSession, who: Principal, booking_id: uuid.UUID, tz: str) -> Booking:
        booking = await repository.locked(session, booking_id)
        if booking is None or booking.user_id != who.user_id:
            raise BookingNotFound
        if booking.status != BookingStatus.CONFIRMED:
            raise BookingStateConflict(
                f"only a confirmed booking can be cancelled; this one is {booking.status}"
            )
        departs = dt.datetime.fromisoformat((await ticket_view(session, booking, tz))["departs_at"])
        try:
            amount = refunds.refund(booking.amount, departs, dt.datetime.now(dt.UTC))
        except refunds.TooLateToCancel as exc:
            raise BookingStateConflict(f"the train has already left: {exc}") from exc
        transition(booking, BookingStatus.CANCELLED)
        booking.refund_amount = amount
        booking.unsell_pending = True  # until Redis has the seats back on sale (below, or the reaper)
        await repository.unsell(session, booking.id)
        event = {"booking_id": str(booking.id), "status": booking.status, "refund_amount": amount}
        outbox.add(session, topology.EVENTS, "booking.cancelled", event)
        outbox.add(session, topology.PAYMENTS, "refund.requested", event)
        # A cached ticket stands for a confirmed booking (downloads read no row): made void before the
        # commit, so a Redis failure cancels nothing and no render under way can store it again.
        await cache.void(self.redis, str(booking.id))
        await session.commit()
        log.info("booking.cancelled", booking_id=str(booking.id), refund_amount=amount)
        try:
            if not await self.holds.unmark_sold(
                booking.journey_id, booking.seat_ids, Segment(booking.from_seq, booking.to_seq).mask
            ):  # Redis is being given the journey's sales back: left flagged, to the reaper's repair
                log.info("booking.unsell_deferred", booking_id=str(booking.id), reason="resyncing")
                return booking
            await repository.unsold(session, booking.id)
        except (RedisError, OSError, SQLAlchemyError) as exc:
            # Cancelled all the same (committed: the answer says so, a retry would be a 409). The reaper
            # finishes what is flagged (jatra.seats.reaper.sync_unsold_legs).
            log.warning("booking.unsell_deferred", booking_id=str(booking.id), error=type(exc).__name__)
        return booking

    async def ticket(self, who: Principal, booking_id: uuid.UUID) -> bytes:
        """The e-ticket PDF of one of your confirmed bookings. Once rendered (the notifications worker
        renders it on confirmation, unless the passenger's download came first) it is one Redis round
        trip: the entry names its account, and exists only for a confirmed booking (see
        jatra.tickets.cache), so no database session is needed. Not rendered yet, the same round trip
        takes the render lock; the booking and the ticket's catalogue part are then one statement
        (jatra.infra.pg), and the store lets go of the lock."""

        async def load_view() -> dict[str, Any]:  # only when the PDF must be rendered here
            with tracer.start_as_current_span("bookings.ticket"):
                booking = await repository.ticket_booking(self.pg, booking_id)
                if booking is None or booking.user_id != who.user_id:
                    raise BookingNotFound
                if booking.status != BookingStatus.CONFIRMED:
                    raise BookingStateConflict(
                        f"a ticket exists only for a confirmed booking; this one is {booking.status}"
                    )
                catalogue = await journey_catalogue(self.pg, booking)
                if catalogue is None:  # a journey is a foreign key of its bookings: deleted under us
                    log.error("bookings.ticket.catalogue_missing", booking_id=str(booking.id))
                    raise BookingNotFound
                return compose_view(booking, catalogue, self.reach.tz)

        try:
            return await cache.get_or_render(
                self.redis, self.reach.ticket_key, str(booking_id), str(who.user_id), load_view, "api"
            )
        except cache.NotYours:
            raise BookingNotFound from None

    async def mine(self, who: Principal, limit: int, cursor: str | None) -> BookingPage:
        after = _decode_cursor(cursor) if cursor else None
        async with self.sessions() as session:
            rows = await repository.newest_first(session, who.user_id, limit + 1, after)
        page, more = rows[:limit], len(rows) > limit
        return BookingPage(
            bookings=[to_out(b) for b in page], next_cursor=_encode_cursor(page[-1]) if more else None
        )


def _encode_cursor(b: Booking) -> str:
    return base64.urlsafe_b64encode(f"{b.created_at.isoformat()}|{b.id}".encode()).decode()


def _decode_cursor(cursor: str) -> tuple[dt.datetime, uuid.UUID]:
    try:
        created, last = base64.urlsafe_b64decode(cursor.encode()).decode().split("|")
        # in UTC, as the API wrote it: a time that has none (0001-01-01 at +14:00) fails here, not in the
        # database's driver as a value "that cannot be stored"
        return dt.datetime.fromisoformat(created).astimezone(dt.UTC), uuid.UUID(last)
    except (ValueError, UnicodeDecodeError, OverflowError):
        raise InvalidBooking("cursor", "not a cursor this API returned") from None
