"""`jatra worker reconciler`: no booking stays stuck, and no captured payment is left without a ticket.

Bookings in PAYMENT_PENDING or PAYMENT_PROCESSING for longer than the hold TTL are settled by asking the
provider what happened to their key, voiding it if it was never charged: captured -> confirmed (or, if
the seats were sold to someone else meanwhile, failed and the charge's refund requested); declined or
voided -> failed. Voiding, not a lookup: a charge with that key still on its way then takes nothing,
where after a lookup's "never seen" it could have landed for a booking already failed.
"""

from __future__ import annotations

import datetime as dt
import time
import uuid
from collections.abc import Sequence

import psycopg
import structlog
from sqlalchemy import Uuid, all_, any_, bindparam, func, select
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.sql.elements import BindParameter

from jatra.db.bookings import Booking
from jatra.domain.booking_states import BookingStatus
from jatra.errors import dependency_of
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
#: trouble every booking would meet ends the pass, as it always did: whatever jatra.errors.dependency_of names
#: (Postgres, Redis or the network out of reach), the provider unavailable, and any psycopg operational error
#: (a deadlock or lock wait too, as before). Anything else raised while settling one booking (a constraint
#: it breaks) is that booking's: logged as payment.reconcile_failed, passed over for a while when the pass is
#: full (PassedOver), the rest settled.
SHARED = (ProviderUnavailable, psycopg.OperationalError)
#: the most stuck bookings one pass takes
WINDOW = 500
#: the most bookings PassedOver keeps (the oldest failure forgotten first: tried again sooner, no harm)
MAX_TRACKED = 10_000
#: a booking whose settling failed is left out of this many passes (a minute at the default interval of 10 s),
#: twice as many after each further failure, up to PASS_OVER_MAX_S
PASS_OVER_PASSES = 6
PASS_OVER_MAX_S = 3600.0


class PassedOver:
    """Bookings whose settling failed for a reason of their own, and when each may be tried again: left out
    of a pass that would otherwise be full (WINDOW, the longest stuck first), so that a window's worth of
    them cannot keep every booking stuck after them from being settled. A pass with room takes them all.
    Kept in the process: a restarted reconciler tries each once more before passing it over again."""

    def __init__(self) -> None:
        self._until: dict[uuid.UUID, tuple[int, float]] = {}  # booking -> (failures, monotonic time)

    def failed(self, booking_id: uuid.UUID, pass_s: float) -> float:
        """Count a failure; the seconds until the booking is tried again (``pass_s``: the time between
        passes)."""
        failures = self._until.get(booking_id, (0, 0.0))[0] + 1
        wait_s = min(pass_s * PASS_OVER_PASSES * (1 << min(failures - 1, 20)), PASS_OVER_MAX_S)
        self._until.pop(booking_id, None)  # to the end: the oldest failure first out
        self._until[booking_id] = (failures, time.monotonic() + wait_s)
        while len(self._until) > MAX_TRACKED:
            del self._until[next(iter(self._until))]
        return wait_s

    def settled(self, booking_id: uuid.UUID) -> None:
        self._until.pop(booking_id, None)

    def waiting(self) -> list[uuid.UUID]:
        """The bookings to leave out of this pass."""
        now = time.monotonic()
        return [b for b, (_, until) in self._until.items() if until > now]

    def tracked(self) -> list[uuid.UUID]:
        return list(self._until)

    def keep_only(self, stuck: set[uuid.UUID]) -> None:
        """Forget the bookings not in ``stuck`` (settled elsewhere: a redelivery, an operator)."""
        for booking_id in self._until.keys() - stuck:
            del self._until[booking_id]


#: this process's
PASSED_OVER = PassedOver()


async def reconcile(res: Resources, passed_over: PassedOver = PASSED_OVER) -> int:
    settings = res.settings
    now = dt.datetime.now(dt.UTC)
    cutoff = now - dt.timedelta(seconds=settings.hold_ttl_s)
    waiting = passed_over.waiting()
    async with res.db()() as session:
        stuck_now = await session.scalar(
            select(func.count()).where(Booking.status.in_(STUCK), Booking.created_at < now - STUCK_AFTER)
        )
        STUCK_NOW.set(stuck_now or 0)
        due = select(Booking.id).where(Booking.status.in_(STUCK), Booking.created_at < cutoff)
        # the longest stuck first; when they fill the pass, without those passed over
        stuck = list((await session.scalars(due.order_by(Booking.created_at).limit(WINDOW))).all())
        if len(stuck) == WINDOW and waiting:
            due = due.where(Booking.id != all_(_ids("waiting", waiting)))
            stuck = list((await session.scalars(due.order_by(Booking.created_at).limit(WINDOW))).all())
        if tracked := passed_over.tracked():  # forgotten once stuck no more (settled elsewhere)
            still = await session.scalars(
                select(Booking.id).where(
                    Booking.id == any_(_ids("tracked", tracked)), Booking.status.in_(STUCK)
                )
            )
            passed_over.keep_only(set(still))
    if not stuck:
        return 0
    client = ProviderClient(settings.provider, settings.provider_timeout_s)
    store = HoldStore(res.cache())
    try:
        for booking_id in stuck:
            try:
                action = await _settle(res, client, store, booking_id)
            except Exception as exc:
                if isinstance(exc, SHARED) or dependency_of(exc) is not None:
                    raise  # the pass ends: the worker logs worker.iteration.failed and backs off
                # this booking's own: it must not keep the rest of the pass from settling
                wait_s = passed_over.failed(booking_id, settings.reconcile_interval_s)
                log.exception("payment.reconcile_failed", booking_id=str(booking_id), retry_in_s=wait_s)
                continue
            passed_over.settled(booking_id)
            ACTIONS.labels(action).inc()
            log.info("payment.reconciled", booking_id=str(booking_id), action=action)
    finally:
        await client.close()
    return len(stuck)


def _ids(name: str, ids: Sequence[uuid.UUID]) -> BindParameter[Sequence[uuid.UUID]]:
    """Booking ids as one array parameter (one per id would meet the driver's limit of 32,767)."""
    return bindparam(name, ids, type_=ARRAY(Uuid()))


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
