"""Seat inventory in Postgres: holds as recorded (Redis is where they live), and sales under a guarantee.

``seat_sales`` carries an exclusion constraint: one seat of one journey can never be sold twice on
overlapping legs, whatever Redis believes. Legs are an int4range [start, end) of leg indexes.
"""

from __future__ import annotations

import datetime as dt
import uuid

from sqlalchemy import BigInteger, DateTime, ForeignKey, Index, Integer, SmallInteger, String, func
from sqlalchemy.dialects.postgresql import ARRAY, INT4RANGE, ExcludeConstraint, Range
from sqlalchemy.orm import Mapped, mapped_column

from jatra.db.base import Base
from jatra.inventory.status import HoldStatus


class Hold(Base):
    __tablename__ = "holds"
    __table_args__ = (Index("ix_holds_active_expiry", "expires_at", postgresql_where="status = 'ACTIVE'"),)
    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    journey_id: Mapped[int] = mapped_column(ForeignKey("journeys.id", ondelete="CASCADE"))
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    seat_ids: Mapped[list[int]] = mapped_column(ARRAY(BigInteger))
    from_seq: Mapped[int] = mapped_column(SmallInteger)
    to_seq: Mapped[int] = mapped_column(SmallInteger)
    seat_class: Mapped[str] = mapped_column(String(12))
    #: fare of all its seats for its segment, in BDT, fixed when the hold is taken
    total_fare: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    #: ACTIVE, RELEASED, EXPIRED or CONVERTED (sold through a booking)
    status: Mapped[str] = mapped_column(String(12), default=HoldStatus.ACTIVE)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    expires_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    ended_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))


class SeatSale(Base):
    __tablename__ = "seat_sales"
    __table_args__ = (
        ExcludeConstraint(
            ("journey_id", "="), ("seat_id", "="), ("legs", "&&"), name="no_double_sale", using="gist"
        ),
    )
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    journey_id: Mapped[int] = mapped_column(ForeignKey("journeys.id", ondelete="CASCADE"))
    seat_id: Mapped[int] = mapped_column(ForeignKey("seats.id"))
    legs: Mapped[Range[int]] = mapped_column(INT4RANGE)
    #: the booking that bought it (the bookings issue adds the table and the foreign key)
    booking_id: Mapped[uuid.UUID | None] = mapped_column()
    sold_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
