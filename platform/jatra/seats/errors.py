"""Errors of the seats service."""

from __future__ import annotations

import math

from jatra.errors import Conflict, DependencyUnavailable, InvalidInput, InvalidParam, NotFound
from jatra.settings import get_settings


class InvalidHold(InvalidInput):
    slug = "invalid-hold"
    title = "Invalid seat request"

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(InvalidParam(field, reason))


class SeatsTaken(Conflict):
    slug = "seats-taken"
    title = "Seats are no longer available"

    def __init__(self, seats: list[int]) -> None:
        super().__init__(f"seats {seats} are held or sold on this segment; none were held", seats=seats)


class HoldLimitReached(Conflict):
    slug = "hold-limit"
    title = "Hold limit reached"


class HoldNotFound(NotFound):
    """Unknown hold, or another passenger's: both answer 404, so hold ids reveal nothing."""

    slug = "hold-not-found"
    title = "Hold not found"

    def __init__(self) -> None:
        super().__init__("no such hold")


class HoldExpired(Conflict):
    slug = "hold-expired"
    title = "Hold has expired"

    def __init__(self) -> None:
        super().__init__("the hold expired and its seats were released; hold them again")


class HoldBeingPaid(Conflict):
    """A booking of the hold waits for its payment: releasing the seats now would sell them twice, or
    charge a passenger for seats gone, once the payment is taken."""

    slug = "hold-booked"
    title = "Hold is being paid for"

    def __init__(self) -> None:
        super().__init__("a booking of this hold is being paid for; its payment sells or frees the seats")


class HoldAtLimit(Conflict):
    slug = "hold-at-limit"
    title = "Hold cannot be extended further"


class SeatsResyncing(DependencyUnavailable):
    """Redis does not know this journey's sales yet (a restart without persistence): a free-looking seat
    may be sold, so no hold is taken until the reaper has written them back (jatra.inventory.resync)."""

    slug = "seats-resyncing"
    title = "Seat availability is being restored"
    traceback = False  # refused on purpose, and logged as hold.resyncing

    def __init__(self) -> None:
        super().__init__(
            "redis",
            "this train's seat availability is being restored from the sales record; no seat was held, "
            "retry shortly",
        )

    def headers(self) -> dict[str, str]:
        """The reaper's next pass restores the journey (the API asked it to)."""
        return {"Retry-After": str(math.ceil(get_settings().reaper_interval_s))}
