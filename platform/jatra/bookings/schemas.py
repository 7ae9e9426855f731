"""Wire types of the bookings API."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Annotated, Literal

import msgspec

PAYMENT_METHODS = ("bkash", "nagad", "rocket", "card")


class PassengerIn(msgspec.Struct, frozen=True, kw_only=True):
    name: Annotated[str, msgspec.Meta(min_length=1, max_length=60)]
    age: Annotated[int, msgspec.Meta(ge=0, le=120)]
    gender: Literal["male", "female", "other"]


class BookingRequest(msgspec.Struct, frozen=True, kw_only=True):
    hold_id: uuid.UUID
    passengers: list[PassengerIn]
    payment_method: str
    email: Annotated[str, msgspec.Meta(pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$", max_length=254)] | None = None


class BookingAccepted(msgspec.Struct, frozen=True, kw_only=True):
    booking_id: uuid.UUID
    status: str
    amount: int


class BookingOut(msgspec.Struct, frozen=True, kw_only=True):
    booking_id: uuid.UUID
    status: str
    reason: str | None
    journey_id: int
    seats: list[int]
    passengers: list[PassengerIn]
    payment_method: str
    amount: int
    ticket_number: str | None
    refund_amount: int | None
    created_at: dt.datetime


class BookingPage(msgspec.Struct, frozen=True, kw_only=True):
    bookings: list[BookingOut]
    next_cursor: str | None


class VerifyRequest(msgspec.Struct, frozen=True):
    qr: str


class VerifyResult(msgspec.Struct, frozen=True, kw_only=True):
    valid: bool
    reason: str
    ticket: dict[str, object] | None
