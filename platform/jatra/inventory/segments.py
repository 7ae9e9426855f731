"""Segment arithmetic. A journey's stops are numbered 0..n-1; leg i runs from stop i to stop i+1.

A ticket from stop a to stop b (a < b) occupies legs a..b-1, kept as a bitmask so that "is this seat free
for this segment" is one AND: a seat sold Dhaka->Bhairab Bazar stays sellable Bhairab Bazar->Sylhet.
"""

from __future__ import annotations

from dataclasses import dataclass

MAX_LEGS = 31  # masks meet Redis Lua's bit library, which works on 32-bit integers


@dataclass(frozen=True, slots=True)
class Segment:
    start: int  # index of the boarding stop
    end: int  # index of the alighting stop (exclusive leg bound)

    def __post_init__(self) -> None:
        if not 0 <= self.start < self.end <= MAX_LEGS:
            raise ValueError(f"invalid segment {self.start}->{self.end}")

    @property
    def mask(self) -> int:
        return (1 << self.end) - (1 << self.start)

    @property
    def legs(self) -> range:
        return range(self.start, self.end)

    def overlaps(self, other: Segment) -> bool:
        return self.start < other.end and other.start < self.end


def overlaps(mask_a: int, mask_b: int) -> bool:
    return mask_a & mask_b != 0
