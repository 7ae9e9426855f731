"""How far behind the payments are: the age of the oldest booking still waiting for the payment worker.

Admission control by in-flight requests protects an API process; it cannot see a payment worker that
settles fewer bookings than the API accepts. Then every booking accepted waits longer for its payment
(holds run out meanwhile), and a long rush only makes the wait longer. So each API process reads, once a
second, the age of the oldest booking in PAYMENT_PENDING (one probe of the ``ix_bookings_stuck`` index),
and admission control refuses new trips while it is over ``JATRA_ADMISSION_PAYMENT_DELAY_S``. A read
that fails leaves the last value to fade: it counts as no backlog after ``STALE_S``, so an outage of the
database is answered by its own 503s, not by refusing every trip.
"""

from __future__ import annotations

import asyncio
import time

import structlog
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from jatra.db.bookings import Booking
from jatra.domain.booking_states import BookingStatus
from jatra.telemetry import catalogue as c
from jatra.telemetry.metrics import gauge

log = structlog.get_logger("jatra.admission")
DELAY = gauge(c.ADMISSION_PAYMENT_DELAY)
OLDEST_PENDING = select(func.extract("epoch", func.now() - func.min(Booking.updated_at))).where(
    Booking.status == BookingStatus.PAYMENT_PENDING.value
)
#: a reading older than this counts as no backlog
STALE_S = 10.0
#: one log event per process at most this often while reads fail
LOG_EVERY_S = 60.0


class PaymentBacklog:
    def __init__(self) -> None:
        self._delay_s = 0.0
        self._read_at = 0.0
        self._log_due = 0.0
        DELAY.set_function(lambda: self.delay_s)

    @property
    def delay_s(self) -> float:
        """Seconds the oldest booking has waited for the payment worker, as last read (0: none waits)."""
        return self._delay_s if time.monotonic() - self._read_at < STALE_S else 0.0

    async def read(self, sessions: async_sessionmaker[AsyncSession]) -> float:
        async with sessions() as session:
            age = (await session.execute(OLDEST_PENDING)).scalar()
        self._delay_s, self._read_at = max(float(age or 0.0), 0.0), time.monotonic()
        return self._delay_s

    async def watch(self, sessions: async_sessionmaker[AsyncSession], every_s: float = 1.0) -> None:
        """Read every ``every_s`` until cancelled; failures are logged once a minute and retried."""
        while True:
            try:
                await self.read(sessions)
            except Exception as exc:  # any failure: keep watching, the value goes stale
                if time.monotonic() >= self._log_due:
                    log.warning("http.admission.backlog_unread", error=type(exc).__name__)
                    self._log_due = time.monotonic() + LOG_EVERY_S
            await asyncio.sleep(every_s)
