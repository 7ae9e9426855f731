"""Settling a booking once the provider has answered: confirm (sell the seats) or fail (free them).

Both run in one Postgres transaction with the booking row locked, and write their event to the outbox in
that transaction. Both are idempotent: a booking no longer in payment is left alone (redeliveries,
reconciliation). Money taken for a booking that ended without a ticket goes back through a refund request
in the outbox (durable: the payment worker makes it with retries, and its dead-letter queue, which pages,
is the last stop), never through a call that a crash or an outage could lose.
Starting a charge and the usual confirmation are one statement each (:mod:`jatra.payments.repository`);
a confirmation that meets a seat sold meanwhile (or a deadlock) takes the careful path, which finds out
which and fails the booking with its reason.
"""

from __future__ import annotations

import base64
import uuid

import msgspec
import structlog
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from jatra.db.bookings import Booking
from jatra.db.inventory import Hold
from jatra.domain.booking_states import BookingStatus, Settled, record_transition, transition
from jatra.infra import outbox, topology
from jatra.infra.doorbell import ring
from jatra.infra.pg import Statements
from jatra.inventory.holds import HoldStore, Refused
from jatra.inventory.sales import DoubleSale, record_sale
from jatra.inventory.segments import Segment
from jatra.inventory.status import HoldStatus
from jatra.payments import repository
from jatra.payments.repository import Charging
from jatra.telemetry import catalogue as c
from jatra.telemetry.metrics import counter

log = structlog.get_logger()
HOLDS_ENDED = counter(c.HOLD_ENDED)
S = BookingStatus
IN_PAYMENT = frozenset({S.PAYMENT_PENDING, S.PAYMENT_PROCESSING})
#: ended without a ticket and without a refund of their own under way (a cancellation has one)
UNPAID_ENDS = frozenset({S.PAYMENT_FAILED, S.EXPIRED})
#: why a booking failed whose key was voided: nothing was charged, and nothing can be any more
NEVER_CHARGED = "payment never reached the provider"


def ticket_number(booking_id: uuid.UUID) -> str:
    """The booking's ticket number, the same for every confirmation of it: "JT" and 72 of the booking id's
    random bits in base 32 (A-Z, 2-7; 17 characters). It was their first 40 bits in hex: with N bookings
    stored a new one's number was taken with a chance of N / 2^40, about once in 220,000 at five million (a
    unique violation in Postgres; the payment, captured, was retried without end, and the booking stayed
    PAYMENT_PROCESSING). At 72 bits, ten billion bookings hold one shared number with a chance of ~1 %."""
    bits = booking_id.bytes[:6] + booking_id.bytes[9:12]  # a version 4 UUID's version and variant skipped
    return "JT" + base64.b32encode(bits).decode().rstrip("=")


async def locked(session: AsyncSession, booking_id: uuid.UUID) -> Booking | None:
    return (await session.scalars(select(Booking).where(Booking.id == booking_id).with_for_update())).first()


def _event(booking: Booking) -> dict[str, object]:
    return {"booking_id": str(booking.id), "status": booking.status, "ticket_number": booking.ticket_number,
            "reason": booking.reason, "user_id": str(booking.user_id)}  # fmt: skip


async def _open(
    session: AsyncSession, booking_id: uuid.UUID, booking: Booking | None = None
) -> Booking | None:
    """The booking locked and in PAYMENT_PROCESSING, or None (transaction ended) if unknown or no longer
    in payment. ``booking``: the row as this transaction already locked it (not read again)."""
    booking = booking or await locked(session, booking_id)
    if booking is None or BookingStatus(booking.status) not in IN_PAYMENT:
        await session.commit()
        return None
    if booking.status == S.PAYMENT_PENDING:
        transition(booking, S.PAYMENT_PROCESSING)
    return booking


async def start_processing(pg: Statements, booking_id: uuid.UUID) -> Charging | None:
    """PAYMENT_PENDING -> PAYMENT_PROCESSING (a redelivery finds it processing already). None if final."""
    charging = await repository.start(pg, booking_id)
    if charging is not None and charging.was == S.PAYMENT_PENDING:
        record_transition(charging.id, S.PAYMENT_PENDING, S.PAYMENT_PROCESSING)
    return charging


async def confirm(
    sessions: async_sessionmaker[AsyncSession], pg: Statements, store: HoldStore, booking_id: uuid.UUID
) -> bool:
    """Payment captured: sell the seats under the Postgres guarantee. False when the money goes back (its
    refund requested here): the seats were sold meanwhile, or the booking had already ended without a
    ticket (a charge that landed after the reconciler failed it). An ORM session is opened only on those
    paths: the confirmation itself is one statement (an unused session cost 69 µs to open and close)."""
    ticket = ticket_number(booking_id)
    try:
        found = await repository.confirm(
            pg, booking_id, ticket, outbox.draft(topology.EVENTS, "booking.confirmed")
        )
    except repository.SaleRefused:
        async with sessions() as session:
            return await _confirm_carefully(session, store, booking_id)  # nothing was written
    if found is None:
        return True
    was = BookingStatus(found.was)
    if was not in IN_PAYMENT:
        if was != S.CONFIRMED:
            log.warning("payment.captured_after_end", booking_id=str(booking_id), status=was.value)
            async with sessions() as session:
                await refund_if_unpaid(session, booking_id)
        return was == S.CONFIRMED
    if was == S.PAYMENT_PENDING:
        record_transition(found.id, S.PAYMENT_PENDING, S.PAYMENT_PROCESSING)
    record_transition(found.id, S.PAYMENT_PROCESSING, S.CONFIRMED, None, found.created_at)
    await _confirmed(store, found.id, found.user_id, found.journey_id, found.hold_id, found.seat_ids,
                     Segment(found.from_seq, found.to_seq), found.seat_class, ticket)  # fmt: skip
    return True


async def _confirm_carefully(session: AsyncSession, store: HoldStore, booking_id: uuid.UUID) -> bool:
    """:func:`confirm` step by step with the ORM: a sale refused by the exclusion constraint fails the
    booking (the charge is then refunded by the caller), a deadlock is retried."""
    current = await locked(session, booking_id)
    if current is not None and current.status != S.CONFIRMED and current.status not in IN_PAYMENT:
        log.warning("payment.captured_after_end", booking_id=str(booking_id), status=current.status)
        await refund_if_unpaid(session, booking_id)  # the row is locked already: read, not waited for
        return False
    booking = await _open(session, booking_id, current)
    if booking is None:
        return True
    segment = Segment(booking.from_seq, booking.to_seq)
    try:
        await record_sale(session, booking.journey_id, booking.seat_ids, segment, booking.id)
    except DoubleSale:
        await _fail(
            session, booking, "the seats were sold to someone else while paying; the charge is refunded"
        )
        _request_refund(session, booking.id, "seats sold meanwhile")
        await session.commit()
        await _free(store, booking)
        await _ring_booking(store, booking)
        return False
    transition(booking, S.CONFIRMED)
    booking.ticket_number = ticket_number(booking.id)
    await session.execute(update(Hold).where(Hold.id == booking.hold_id).values(status=HoldStatus.CONVERTED))
    outbox.add(session, topology.EVENTS, "booking.confirmed", _event(booking))
    await session.commit()
    await _confirmed(store, booking.id, booking.user_id, booking.journey_id, booking.hold_id,
                     booking.seat_ids, segment, booking.seat_class, booking.ticket_number)  # fmt: skip
    return True


async def _confirmed(
    store: HoldStore,
    booking_id: uuid.UUID,
    owner: uuid.UUID,
    journey_id: int,
    hold_id: uuid.UUID,
    seat_ids: list[int],
    segment: Segment,
    seat_class: str,
    ticket: str,
) -> None:
    """After either path committed a confirmation: the seats sold in Redis, the long polls woken, the hold's
    end counted and the event logged. ``owner``: the booking's account, which made the hold."""
    sold = await store.sell(journey_id, hold_id, owner)
    if isinstance(sold, Refused):  # the hold had expired: mark the legs sold directly
        await store.mark_sold(journey_id, seat_ids, segment.mask)
    await _ring(store, booking_id, Settled(S.CONFIRMED, None, ticket))
    HOLDS_ENDED.labels("converted", seat_class).inc()
    log.info("booking.confirmed", booking_id=str(booking_id), ticket_number=ticket)


async def fail(
    store: HoldStore, *, session: AsyncSession, booking_id: uuid.UUID, reason: str, refund: bool = False
) -> None:
    """Payment failed for good: PAYMENT_FAILED, the hold released. ``refund``: the key could not be voided,
    so its refund is requested in the same transaction (made later, it voids the key or returns money an
    earlier attempt took)."""
    booking = await _open(session, booking_id)
    if booking is None:
        return
    await _fail(session, booking, reason)
    if refund:
        _request_refund(session, booking.id, "failed before its key could be voided")
    await session.commit()
    await _free(store, booking)
    await _ring_booking(store, booking)


async def refund_if_unpaid(session: AsyncSession, booking_id: uuid.UUID) -> bool:
    """Request the key's refund if the booking ended without a ticket (a charge that landed, or may land,
    after it failed); a refund of an uncharged key voids it at the provider. True if requested."""
    booking = await locked(session, booking_id)
    requested = booking is not None and booking.status in UNPAID_ENDS
    if requested:
        _request_refund(session, booking_id, "captured after the booking ended")
    await session.commit()
    return requested


def _request_refund(session: AsyncSession, booking_id: uuid.UUID, why: str) -> None:
    outbox.add(session, topology.PAYMENTS, "refund.requested", {"booking_id": str(booking_id), "why": why})
    log.warning("payment.refund_requested", booking_id=str(booking_id), why=why)


async def refunded(session: AsyncSession, booking_id: uuid.UUID) -> None:
    """The provider returned the money: CANCELLED -> REFUNDED (a repeat is a no-op)."""
    booking = await locked(session, booking_id)
    if booking is not None and booking.status == S.CANCELLED:
        transition(booking, S.REFUNDED)
    await session.commit()


async def _fail(session: AsyncSession, booking: Booking, reason: str) -> None:
    transition(booking, S.PAYMENT_FAILED, reason)
    await session.execute(
        update(Hold)
        .where(Hold.id == booking.hold_id, Hold.status == HoldStatus.ACTIVE)
        .values(status=HoldStatus.RELEASED)
    )
    outbox.add(session, topology.EVENTS, "booking.payment_failed", _event(booking))


async def _ring_booking(store: HoldStore, booking: Booking) -> None:
    await _ring(store, booking.id, Settled(booking.status, booking.reason, booking.ticket_number))


async def _ring(store: HoldStore, booking_id: uuid.UUID, settled: Settled) -> None:
    """Wake the long polls waiting on this booking, with what changed (they answer without reading it)."""
    note = msgspec.json.encode(settled).decode()
    await ring(store.redis, topology.SETTLED_CHANNEL, str(booking_id), note)


async def _free(store: HoldStore, booking: Booking) -> None:
    ended = await store.release(booking.journey_id, booking.hold_id, None, booking.user_id)
    if not isinstance(ended, Refused):
        HOLDS_ENDED.labels("released", booking.seat_class).inc()
