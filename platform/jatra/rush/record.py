"""What the generator saw: one sample per HTTP step, and the bookings it got accepted."""

from __future__ import annotations

import asyncio
import statistics
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field


def outcome_of(status: int) -> str:
    if 200 <= status < 300:
        return "ok"
    if status == 409:
        return "conflict"  # expected under contention: a seat someone else holds
    if status == 429:
        return "rate_limited"
    if 400 <= status < 500:
        return "client_error"
    if status == 503:
        return "unavailable"  # refused with Retry-After: admission control shedding, or a dependency down
    return "server_error"


#: the outcomes that are 5xx answers
FIVE_XX = ("unavailable", "server_error")


@dataclass
class Recorder:
    started: float = field(default_factory=time.monotonic)
    outcomes: dict[str, Counter[str]] = field(default_factory=lambda: defaultdict(Counter))
    #: per step, (seconds since start when the answer came, latency in seconds)
    timeline: dict[str, list[tuple[float, float]]] = field(default_factory=lambda: defaultdict(list))
    accepted: list[tuple[float, str]] = field(default_factory=list)  # (seconds since start, booking id)
    finals: dict[str, tuple[float, str]] = field(default_factory=dict)  # booking id -> (t, status)
    arrivals: int = 0
    dropped: int = 0
    abandoned: int = 0
    looked_again: int = 0  # seat maps after a passenger's first (a full train, or seats lost to another)
    left_without_seat: int = 0  # passengers who found no seat to hold in their tries

    def step(self, name: str, status: int, seconds: float) -> None:
        self.timeline[name].append((self.now(), seconds))
        self.outcomes[name][outcome_of(status)] += 1

    def failure(self, name: str, kind: str) -> None:
        self.outcomes[name][kind] += 1

    def count_crash(self, task: asyncio.Task[None]) -> None:
        """A trip that raised (an answer of a shape the generator does not expect, say) is counted under
        "trip", not lost with its task."""
        if not task.cancelled() and task.exception() is not None:
            self.failure("trip", "generator_error")

    def now(self) -> float:
        return time.monotonic() - self.started

    def latency_table(self) -> dict[str, dict[str, float]]:
        table = {}
        for name, points in sorted(self.timeline.items()):
            values = [latency for _, latency in points]
            if len(values) < 2:
                continue
            q = statistics.quantiles(values, n=100, method="inclusive")  # never beyond the data
            table[name] = {
                "count": len(values),
                "p50_ms": round(q[49] * 1000, 1),
                "p95_ms": round(q[94] * 1000, 1),
                "p99_ms": round(q[98] * 1000, 1),
                "max_ms": round(max(values) * 1000, 1),
            }
        return table

    def per_minute(self) -> list[dict[str, int]]:
        minutes: dict[int, Counter[str]] = defaultdict(Counter)
        for t, _ in self.accepted:
            minutes[int(t // 60)]["accepted"] += 1
        for t, status in self.finals.values():
            if status == "CONFIRMED":
                minutes[int(t // 60)]["confirmed"] += 1
        return [{"minute": m, **minutes[m]} for m in sorted(minutes)]

    def series(self, bucket_s: float = 5.0) -> dict[str, object]:
        """Over time, in buckets of ``bucket_s`` seconds from the first arrival: answers per second by step,
        bookings confirmed per second, and each step's p50/p99 latency (None for an empty bucket)."""
        ends = [t for points in self.timeline.values() for t, _ in points]
        ends += [t for t, _ in self.finals.values()]
        buckets = int(max(ends, default=0.0) // bucket_s) + 1
        per_step: dict[str, list[list[float]]] = {}
        for name, points in sorted(self.timeline.items()):
            grouped: list[list[float]] = [[] for _ in range(buckets)]
            for t, latency in points:
                grouped[int(t // bucket_s)].append(latency)
            per_step[name] = grouped
        confirmed = [0] * buckets
        for t, status in self.finals.values():
            if status == "CONFIRMED":
                confirmed[int(t // bucket_s)] += 1
        return {
            "bucket_s": bucket_s,
            "requests_per_s": {n: [round(len(g) / bucket_s, 2) for g in gs] for n, gs in per_step.items()},
            "confirmed_per_s": [round(n / bucket_s, 2) for n in confirmed],
            "p50_ms": {n: [_ms(g, 50) for g in gs] for n, gs in per_step.items()},
            "p99_ms": {n: [_ms(g, 99) for g in gs] for n, gs in per_step.items()},
        }


def _ms(values: list[float], percentile: int) -> float | None:
    """The ``percentile`` of ``values`` in ms (nearest rank), None when there are none."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(0, min(len(ordered) - 1, -(-percentile * len(ordered) // 100) - 1))
    return round(ordered[rank] * 1000, 1)
