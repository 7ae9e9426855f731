"""Settling a booking once the provider has answered: confirm (sell the seats) or fail (free them).

Both run in one Postgres transaction with the booking row locked, and write their event to the outbox in
that transaction. Both are idempotent: a booking already final is left alone (redeliveries, reconciliation).
"""

from __future__ import annotations

import uuid

import msgspec
import structlog
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from jatra.db.bookings import Booking
from jatra.db.inventory import Hold
from jatra.domain.booking_states import FINAL, BookingStatus, Settled, transition
from jatra.infra import outbox, topology
from jatra.infra.doorbell import ring
from jatra.inventory.holds import HoldStore, Refused
from jatra.inventory.sales import DoubleSale, record_sale
from jatra.inventory.segments import Segment
from jatra.inventory.status import HoldStatus
from jatra.telemetry import catalogue as c
from jatra.telemetry.metrics import counter

log = structlog.get_logger()
HOLDS_ENDED = counter(c.HOLD_ENDED)
S = BookingStatus


def ticket_number(booking_id: uuid.UUID) -> str:
    return "JT" + booking_id.hex[:10].upper()


async def locked(session: AsyncSession, booking_id: uuid.UUID) -> Booking | None:
    return (await session.scalars(select(Booking).where(Booking.id == booking_id).with_for_update())).first()


def _event(booking: Booking) -> dict[str, object]:
    return {"booking_id": str(booking.id), "status": booking.status, "ticket_number": booking.ticket_number,
            "reason": booking.reason, "user_id": str(booking.user_id)}  # fmt: skip


async def _open(
    session: AsyncSession, booking_id: uuid.UUID, booking: Booking | None = None
) -> Booking | None:
    """The booking locked and in PAYMENT_PROCESSING, or None (transaction ended) if unknown or final.
    ``booking``: the row as this transaction already locked it (not read again)."""
    booking = booking or await locked(session, booking_id)
    if booking is None or BookingStatus(booking.status) in FINAL:
        await session.commit()
        return None
    if booking.status == S.PAYMENT_PENDING:
        transition(booking, S.PAYMENT_PROCESSING)
    return booking


async def start_processing(session: AsyncSession, booking_id: uuid.UUID) -> Booking | None:
    """PAYMENT_PENDING -> PAYMENT_PROCESSING (a redelivery finds it processing already). None if final."""
    booking = await _open(session, booking_id)
    await session.commit()
    return booking


async def confirm(session: AsyncSession, store: HoldStore, booking_id: uuid.UUID) -> bool:
    """Payment captured: sell the seats under the Postgres guarantee. False when the money must go back:
    the seats were sold meanwhile, or the booking had already ended without a ticket (a charge that landed
    after the reconciler failed it)."""
    current = await locked(session, booking_id)
    if current is not None and current.status != S.CONFIRMED and BookingStatus(current.status) in FINAL:
        await session.commit()
        log.warning("payment.captured_after_end", booking_id=str(booking_id), status=current.status)
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
        await session.commit()
        await _free(store, booking)
        await _ring(store, booking)
        return False
    transition(booking, S.CONFIRMED)
    booking.ticket_number = ticket_number(booking.id)
    await session.execute(update(Hold).where(Hold.id == booking.hold_id).values(status=HoldStatus.CONVERTED))
    outbox.add(session, topology.EVENTS, "booking.confirmed", _event(booking))
    await session.commit()
    sold = await store.sell(booking.journey_id, booking.hold_id)
    if isinstance(sold, Refused):  # the hold had expired: mark the legs sold directly
        await store.mark_sold(booking.journey_id, booking.seat_ids, segment.mask)
    await _ring(store, booking)
    HOLDS_ENDED.labels("converted", booking.seat_class).inc()
    log.info("booking.confirmed", booking_id=str(booking.id), ticket_number=booking.ticket_number)
    return True


async def fail(store: HoldStore, *, session: AsyncSession, booking_id: uuid.UUID, reason: str) -> None:
    """Payment failed for good: PAYMENT_FAILED, the hold released."""
    booking = await _open(session, booking_id)
    if booking is None:
        return
    await _fail(session, booking, reason)
    await session.commit()
    await _free(store, booking)
    await _ring(store, booking)


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


async def _ring(store: HoldStore, booking: Booking) -> None:
    """Wake the long polls waiting on this booking, with what changed (they answer without reading it)."""
    note = msgspec.json.encode(Settled(booking.status, booking.reason, booking.ticket_number)).decode()
    await ring(store.redis, topology.SETTLED_CHANNEL, str(booking.id), note)


async def _free(store: HoldStore, booking: Booking) -> None:
    ended = await store.release(booking.journey_id, booking.hold_id, None)
    if not isinstance(ended, Refused):
        HOLDS_ENDED.labels("released", booking.seat_class).inc()
