"""The states of a seat hold, in Postgres (the Redis key of a live hold is its ACTIVE twin)."""

from __future__ import annotations

from enum import StrEnum


class HoldStatus(StrEnum):
    ACTIVE = "ACTIVE"  # seats held; the Redis key lives
    RELEASED = "RELEASED"  # given back by the passenger, or by a failed payment
    EXPIRED = "EXPIRED"  # its time ran out (the reaper, or a read that found the Redis key gone)
    CONVERTED = "CONVERTED"  # sold through a confirmed booking
