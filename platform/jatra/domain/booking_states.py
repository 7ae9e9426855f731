"""The booking state machine: every allowed transition is in TRANSITIONS, nowhere else.

PAYMENT_PENDING -> PAYMENT_PROCESSING -> CONFIRMED | PAYMENT_FAILED | EXPIRED; CONFIRMED -> CANCELLED ->
REFUNDED. :func:`transition` refuses anything else, and emits one metric, one ECS log event and one span
event per change, whichever service makes it.
"""

from __future__ import annotations

import datetime as dt
from enum import StrEnum
from typing import Protocol

import msgspec
import structlog
from opentelemetry import trace

from jatra.telemetry import catalogue as c
from jatra.telemetry.metrics import counter, histogram, trace_exemplar

log = structlog.get_logger()
TRANSITIONS_TOTAL = counter(c.BOOKING_TRANSITIONS)
SETTLED = histogram(c.BOOKING_SETTLED)


class BookingStatus(StrEnum):
    PAYMENT_PENDING = "PAYMENT_PENDING"
    PAYMENT_PROCESSING = "PAYMENT_PROCESSING"
    CONFIRMED = "CONFIRMED"
    PAYMENT_FAILED = "PAYMENT_FAILED"
    EXPIRED = "EXPIRED"
    CANCELLED = "CANCELLED"
    REFUNDED = "REFUNDED"


S = BookingStatus
TRANSITIONS: dict[BookingStatus, frozenset[BookingStatus]] = {
    S.PAYMENT_PENDING: frozenset({S.PAYMENT_PROCESSING}),
    S.PAYMENT_PROCESSING: frozenset({S.CONFIRMED, S.PAYMENT_FAILED, S.EXPIRED}),
    S.CONFIRMED: frozenset({S.CANCELLED}),
    S.CANCELLED: frozenset({S.REFUNDED}),
    S.PAYMENT_FAILED: frozenset(),
    S.EXPIRED: frozenset(),
    S.REFUNDED: frozenset(),
}
FINAL = frozenset(s for s, nexts in TRANSITIONS.items() if not nexts) | {S.CONFIRMED}
#: where a booking's payment ends: the time from its 202 to one of these is the settle-time SLI
SETTLED_STATES = frozenset({S.CONFIRMED, S.PAYMENT_FAILED, S.EXPIRED})


class Settled(msgspec.Struct, frozen=True):
    """What changes when a booking's payment settles: the note the payment worker rings the long polls
    with (the one definition both sides use)."""

    status: str
    reason: str | None
    ticket_number: str | None


class IllegalTransition(Exception):
    def __init__(self, booking_id: object, current: str, wanted: str) -> None:
        super().__init__(f"booking {booking_id}: {current} cannot become {wanted}")
        self.current = current
        self.wanted = wanted


class HasStatus(Protocol):
    @property
    def id(self) -> object: ...

    status: str
    reason: str | None


def transition(booking: HasStatus, to: BookingStatus, reason: str | None = None) -> None:
    """Move ``booking`` to ``to`` or raise IllegalTransition; the caller commits."""
    current = BookingStatus(booking.status)
    record_transition(booking.id, current, to, reason, getattr(booking, "created_at", None))  # checks it
    booking.status = to.value
    if reason is not None:
        booking.reason = reason[:200]


def record_transition(
    booking_id: object,
    current: BookingStatus,
    to: BookingStatus,
    reason: str | None = None,
    created: dt.datetime | None = None,
) -> None:
    """The metric, span event and log event of one change, for SQL that made it itself (its WHERE clause
    holding it to TRANSITIONS); :func:`transition` calls it for an ORM object."""
    if to not in TRANSITIONS[current]:
        raise IllegalTransition(booking_id, current, to)
    TRANSITIONS_TOTAL.labels(current.value, to.value).inc()
    if to in SETTLED_STATES and isinstance(created, dt.datetime):
        waited = max((dt.datetime.now(dt.UTC) - created).total_seconds(), 0.0)
        SETTLED.labels(to.value).observe(waited, trace_exemplar())
    trace.get_current_span().add_event(
        "booking.transition", {"jatra.booking.from": current.value, "jatra.booking.to": to.value}
    )
    log.info("booking.transition", booking_id=str(booking_id), from_state=current.value, to_state=to.value,
             reason=reason)  # fmt: skip
