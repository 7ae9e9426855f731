"""Errors of the bookings service."""

from __future__ import annotations

from jatra.errors import Conflict, InvalidInput, InvalidParam, NotFound


class InvalidBooking(InvalidInput):
    slug = "invalid-booking"
    title = "Invalid booking request"

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(InvalidParam(field, reason))


class HoldNotBookable(Conflict):
    slug = "hold-not-bookable"
    title = "The hold can no longer be booked"


class BookingNotFound(NotFound):
    slug = "booking-not-found"
    title = "Booking not found"

    def __init__(self) -> None:
        super().__init__("no such booking")


class BookingStateConflict(Conflict):
    slug = "booking-state"
    title = "Not possible in the booking's current state"
