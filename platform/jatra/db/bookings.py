"""Bookings, the transactional outbox, idempotency keys, and the simulated payment provider's ledger."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    SmallInteger,
    String,
    false,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.orm import Mapped, mapped_column

from jatra.db.base import Base


class Booking(Base):
    __tablename__ = "bookings"
    __table_args__ = (
        Index("ix_bookings_stuck", "status", "updated_at"),
        Index("ix_bookings_unsell_pending", "id", postgresql_where=text("unsell_pending")),
    )
    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id"), index=True)
    hold_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("holds.id"), unique=True)
    journey_id: Mapped[int] = mapped_column(ForeignKey("journeys.id"))
    seat_ids: Mapped[list[int]] = mapped_column(ARRAY(BigInteger))
    from_seq: Mapped[int] = mapped_column(SmallInteger)
    to_seq: Mapped[int] = mapped_column(SmallInteger)
    seat_class: Mapped[str] = mapped_column(String(12))
    passengers: Mapped[list[dict[str, Any]]] = mapped_column(JSONB)
    payment_method: Mapped[str] = mapped_column(String(16))
    #: where the e-ticket is e-mailed, if given (the SMS goes to the account's phone)
    contact_email: Mapped[str | None] = mapped_column(String(254))
    amount: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(20), default="PAYMENT_PENDING")
    #: why it failed or expired, for the passenger and for on-call
    reason: Mapped[str | None] = mapped_column(String(200))
    ticket_number: Mapped[str | None] = mapped_column(String(20), unique=True)
    refund_amount: Mapped[int | None] = mapped_column(Integer)
    #: cancelled, its seats not yet back on sale in Redis (the reaper finishes it if the request could not)
    unsell_pending: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    updated_at: Mapped[dt.datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), onupdate=func.now()
    )


class OutboxMessage(Base):
    """A message written in the same transaction as the state change it announces; the relay publishes it."""

    __tablename__ = "outbox"
    __table_args__ = (Index("ix_outbox_unsent", "id", postgresql_where="sent_at IS NULL"),)
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    exchange: Mapped[str] = mapped_column(String(60))
    routing_key: Mapped[str] = mapped_column(String(60))
    message_id: Mapped[uuid.UUID] = mapped_column(unique=True, default=uuid.uuid4)
    payload: Mapped[dict[str, Any]] = mapped_column(JSONB)
    #: W3C trace context of the transaction that wrote it, so the trace continues through the broker
    headers: Mapped[dict[str, str]] = mapped_column(JSONB, default=dict)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    sent_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))


class IdempotencyKey(Base):
    """One client request by Idempotency-Key: done, with the response to replay (24 h), written with the
    work itself; IN_FLIGHT only from older versions, which committed the key before the work."""

    __tablename__ = "idempotency_keys"
    user_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    request_hash: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(12), default="IN_FLIGHT")
    response_status: Mapped[int | None] = mapped_column(SmallInteger)
    response_body: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    response_headers: Mapped[dict[str, str] | None] = mapped_column(JSONB)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    expires_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), index=True)


class ProviderCharge(Base):
    """The simulated payment provider's own ledger: one row per idempotency key, never two."""

    __tablename__ = "provider_charges"
    idempotency_key: Mapped[str] = mapped_column(String(100), primary_key=True)
    amount: Mapped[int] = mapped_column(Integer)
    method: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(12))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
