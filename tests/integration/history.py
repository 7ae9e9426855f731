"""A recorder and an invariant checker for concurrent holds: no seat is ever in two live holds.

Each acquired hold becomes an interval [acquired, ended) in Redis server time (the scripts return it),
ended being the release time or, if never released, the expiry. Two intervals on one seat whose leg
masks overlap must not overlap in time. Scripts are atomic, so their server times order them.
"""

from __future__ import annotations

import itertools
import uuid
from collections import defaultdict
from dataclasses import dataclass, field


@dataclass(slots=True)
class Interval:
    hold_id: uuid.UUID
    seats: list[int]
    mask: int
    start_ms: int
    end_ms: int


@dataclass
class History:
    intervals: dict[uuid.UUID, Interval] = field(default_factory=dict)
    conflicts: int = 0
    limited: int = 0

    def acquired(self, hold_id: uuid.UUID, seats: list[int], mask: int, now_ms: int, expires_ms: int) -> None:
        self.intervals[hold_id] = Interval(hold_id, seats, mask, now_ms, expires_ms)

    def released(self, hold_id: uuid.UUID, now_ms: int) -> None:
        interval = self.intervals[hold_id]
        interval.end_ms = min(interval.end_ms, now_ms)

    def violations(self) -> list[tuple[int, Interval, Interval]]:
        by_seat: dict[int, list[Interval]] = defaultdict(list)
        for interval in self.intervals.values():
            for seat in interval.seats:
                by_seat[seat].append(interval)
        found = []
        for seat, intervals in by_seat.items():
            for a, b in itertools.combinations(intervals, 2):
                if a.mask & b.mask and a.start_ms < b.end_ms and b.start_ms < a.end_ms:
                    found.append((seat, a, b))
        return found
