"""`jatra worker reconciler`: no booking stays stuck, and no captured payment is left without a ticket.

Bookings in PAYMENT_PENDING or PAYMENT_PROCESSING for longer than the hold TTL are settled by asking the
provider what happened to their key, voiding it if it was never charged: captured -> confirmed (or, if
the seats were sold to someone else meanwhile, failed and the charge's refund requested); declined or
voided -> failed. Voiding, not a lookup: a charge with that key still on its way then takes nothing,
where after a lookup's "never seen" it could have landed for a booking already failed.
"""

from __future__ import annotations

import datetime as dt
import uuid

import psycopg
import redis.exceptions
import sqlalchemy.exc
import structlog
from psycopg_pool import PoolTimeout
from sqlalchemy import func, select

from jatra.db.bookings import Booking
from jatra.domain.booking_states import BookingStatus
from jatra.infra.resources import Resources
from jatra.inventory.holds import HoldStore
from jatra.payments import settle
from jatra.payments.client import ProviderClient, ProviderUnavailable
from jatra.telemetry import catalogue as c
from jatra.telemetry.metrics import counter, gauge

log = structlog.get_logger()
ACTIONS = counter(c.RECONCILIATIONS)
STUCK_NOW = gauge(c.BOOKINGS_STUCK)
#: in payment this long after its 202, a booking counts as stuck (the payment path takes seconds)
STUCK_AFTER = dt.timedelta(minutes=2)
STUCK = (BookingStatus.PAYMENT_PENDING.value, BookingStatus.PAYMENT_PROCESSING.value)
#: trouble every booking would meet (the provider, Postgres or Redis unreachable or timing out): it ends the
#: pass, as it always did. Anything else raised while settling one booking (a constraint it breaks) is that
#: booking's: logged as payment.reconcile_failed, the booking left for the next pass, the rest settled.
SHARED = (
    ProviderUnavailable, OSError, redis.exceptions.ConnectionError, redis.exceptions.TimeoutError,
    sqlalchemy.exc.OperationalError, sqlalchemy.exc.InterfaceError, sqlalchemy.exc.TimeoutError,
    psycopg.OperationalError, psycopg.InterfaceError, PoolTimeout,
)  # fmt: skip


async def reconcile(res: Resources) -> int:
    settings = res.settings
    now = dt.datetime.now(dt.UTC)
    cutoff = now - dt.timedelta(seconds=settings.hold_ttl_s)
    async with res.db()() as session:
        stuck_now = await session.scalar(
            select(func.count()).where(Booking.status.in_(STUCK), Booking.created_at < now - STUCK_AFTER)
        )
        STUCK_NOW.set(stuck_now or 0)
        stuck = list(
            (
                await session.scalars(
                    select(Booking.id)
                    .where(Booking.status.in_(STUCK), Booking.created_at < cutoff)
                    .order_by(Booking.created_at)  # the longest stuck first
                    .limit(500)
                )
            ).all()
        )
    if not stuck:
        return 0
    client = ProviderClient(settings.provider, settings.provider_timeout_s)
    store = HoldStore(res.cache())
    try:
        for booking_id in stuck:
            try:
                action = await _settle(res, client, store, booking_id)
            except SHARED:
                raise  # the pass ends: the worker logs worker.iteration.failed and backs off
            except Exception:  # this booking's own: it must not keep the rest of the pass from settling
                log.exception("payment.reconcile_failed", booking_id=str(booking_id))
                continue
            ACTIONS.labels(action).inc()
            log.info("payment.reconciled", booking_id=str(booking_id), action=action)
    finally:
        await client.close()
    return len(stuck)


async def _settle(res: Resources, client: ProviderClient, store: HoldStore, booking_id: uuid.UUID) -> str:
    """Settle one stuck booking by what the provider says of its key; the action taken."""
    result = await client.void(str(booking_id))
    if result.captured:
        if not await settle.confirm(res.db(), res.statements(), store, booking_id):
            return "refunded"  # the seats went to someone else meanwhile: refund requested
        return "confirmed"
    reason = settle.NEVER_CHARGED if result.voided else "payment declined"
    async with res.db()() as session:
        await settle.fail(store, session=session, booking_id=booking_id, reason=reason)
    return "failed"
