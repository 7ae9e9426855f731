"""Wire types of the bookings API."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Annotated, Literal

import msgspec

from jatra.infra.inputs import EMAIL, PLAIN_TEXT, plain_text

PAYMENT_METHODS = ("bkash", "nagad", "rocket", "card")


class PassengerIn(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    name: Annotated[str, plain_text(60, description="As on the passenger's identity document")]
    age: Annotated[int, msgspec.Meta(ge=0, le=120)]
    gender: Literal["male", "female", "other"]


class BookingRequest(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    hold_id: uuid.UUID
    passengers: Annotated[list[PassengerIn], msgspec.Meta(max_length=16)]
    payment_method: Annotated[str, plain_text(20, description=f"One of {', '.join(PAYMENT_METHODS)}")]
    email: Annotated[str, msgspec.Meta(pattern=EMAIL, max_length=254)] | None = None


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


class VerifyRequest(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    qr: Annotated[str, msgspec.Meta(max_length=4096, pattern=PLAIN_TEXT)]


class VerifyResult(msgspec.Struct, frozen=True, kw_only=True):
    valid: bool
    reason: str
    ticket: dict[str, object] | None
