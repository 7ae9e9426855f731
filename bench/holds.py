"""Hold throughput and latency against the real Redis of the local stack (`make bench-holds`).

Closed loop: C concurrent callers, each taking holds of N random seats on random segments of many
journeys for T seconds. Conflicts (a seat already held) are counted apart; latency is per script call,
round trip included. Results go to bench/results/holds.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import statistics
import time
import uuid
from pathlib import Path

from redis.asyncio import Redis

from jatra.inventory.holds import Acquired, Conflicted, HoldStore
from jatra.inventory.segments import Segment
from jatra.settings import get_settings

RESULTS = Path(__file__).parent / "results" / "holds.json"


async def run(seats: int, concurrency: int, seconds: float) -> dict[str, float]:
    redis = Redis.from_url(get_settings().redis, max_connections=concurrency + 8)
    store = HoldStore(redis, prefix=f"bench:{uuid.uuid4().hex[:6]}")
    for journey in range(200):  # no sale yet, as the reaper marks a journey (jatra.inventory.resync)
        await store.resync(journey, {}, int((time.time() + seconds + 600) * 1000))
    latencies: list[float] = []
    outcomes = {"acquired": 0, "conflicted": 0, "limited": 0}
    deadline = time.monotonic() + seconds

    async def caller(n: int) -> None:
        rng = random.Random(n)  # noqa: S311 - load shaping, not security
        while time.monotonic() < deadline:
            journey = rng.randrange(200)
            start = rng.randrange(0, 8)
            mask = Segment(start, rng.randint(start + 1, 9)).mask
            chosen = rng.sample(range(1, 901), seats)
            t0 = time.perf_counter()
            result = await store.hold(journey, uuid.uuid4(), uuid.uuid4(), chosen, mask,
                                      ttl_s=5, max_seats=4, max_live=2, seat_class="S_CHAIR")  # fmt: skip
            latencies.append(time.perf_counter() - t0)
            key = (
                "acquired"
                if isinstance(result, Acquired)
                else "conflicted"
                if isinstance(result, Conflicted)
                else "limited"
            )
            outcomes[key] += 1

    redis0 = await _redis_cpu(redis)
    cpu0, wall0 = os.times(), time.monotonic()
    await asyncio.gather(*(caller(n) for n in range(concurrency)))
    cpu1, wall = os.times(), time.monotonic() - wall0
    redis_cpu = (await _redis_cpu(redis) - redis0) / wall
    await redis.aclose()
    q = statistics.quantiles(latencies, n=100, method="inclusive")
    return {
        "seats": seats, "concurrency": concurrency, "seconds": round(wall, 2),
        "holds_per_s": round(len(latencies) / wall), **outcomes,
        "p50_ms": round(q[49] * 1000, 3), "p99_ms": round(q[98] * 1000, 3),
        "max_ms": round(max(latencies) * 1000, 3),
        "generator_cpu_share": round((cpu1.user + cpu1.system - cpu0.user - cpu0.system) / wall, 2),
        "redis_cpu_share": round(redis_cpu, 2),
    }  # fmt: skip


async def _redis_cpu(redis: Redis) -> float:
    info = await redis.info("cpu")
    return float(info["used_cpu_user"]) + float(info["used_cpu_sys"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 32])
    args = parser.parse_args()
    rows = [asyncio.run(run(n, c, args.seconds)) for c in args.concurrency for n in (1, 4)]
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(
        json.dumps({"at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "runs": rows}, indent=2)
    )
    for row in rows:
        print(json.dumps(row))  # noqa: T201


if __name__ == "__main__":
    main()
