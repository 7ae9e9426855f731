"""The refund rule: the earlier a confirmed ticket is cancelled, the more of the fare comes back."""

from __future__ import annotations

import datetime as dt
import math

#: (at least this long before departure, share of the fare kept as a fee), first match wins
FEES: tuple[tuple[dt.timedelta, float], ...] = (
    (dt.timedelta(hours=48), 0.10),
    (dt.timedelta(hours=24), 0.25),
    (dt.timedelta(hours=6), 0.50),
    (dt.timedelta(0), 1.00),
)


class TooLateToCancel(ValueError):
    """The train has left."""


def refund(amount: int, departs_at: dt.datetime, now: dt.datetime) -> int:
    """Whole taka back for a ticket of ``amount`` cancelled at ``now``; raises after departure."""
    left = departs_at - now
    for at_least, fee in FEES:
        if left >= at_least:
            return math.floor(amount * (1 - fee))
    raise TooLateToCancel(f"the train left {-left} ago")
