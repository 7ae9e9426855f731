"""Recording a sale in Postgres, where the exclusion constraint makes a double sale impossible.

Whatever Redis says, two rows for one seat of one journey with overlapping leg ranges cannot both
commit: the second insert fails with an exclusion violation, raised here as :class:`DoubleSale`.
"""

from __future__ import annotations

import uuid

from sqlalchemy.dialects.postgresql import Range, insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from jatra.db.inventory import SeatSale
from jatra.domain.segments import Segment

EXCLUSION_VIOLATION = "23P01"


class DoubleSale(Exception):
    """A seat was already sold on an overlapping segment of this journey."""

    def __init__(self, journey_id: int, seat_ids: list[int], segment: Segment) -> None:
        super().__init__(f"journey {journey_id}: seats {seat_ids} already sold on legs overlapping {segment}")
        self.journey_id = journey_id
        self.seat_ids = seat_ids


async def record_sale(
    session: AsyncSession,
    journey_id: int,
    seat_ids: list[int],
    segment: Segment,
    booking_id: uuid.UUID | None,
) -> None:
    """Insert one sale row per seat, in the caller's transaction. Raises DoubleSale on any overlap."""
    legs = Range(segment.start, segment.end, bounds="[)")
    rows = [
        {"journey_id": journey_id, "seat_id": s, "legs": legs, "booking_id": booking_id} for s in seat_ids
    ]
    try:
        async with session.begin_nested():
            await session.execute(insert(SeatSale).values(rows))
    except IntegrityError as exc:
        if getattr(exc.orig, "sqlstate", None) == EXCLUSION_VIOLATION or "no_double_sale" in str(exc.orig):
            raise DoubleSale(journey_id, seat_ids, segment) from exc
        raise
