"""`jatra demo`: a short burst of journey searches against the running stack, then where everything is."""

from __future__ import annotations

import asyncio
import datetime as dt
import random
import statistics
import time
from collections import Counter
from zoneinfo import ZoneInfo

import httpx

from jatra.settings import Settings

POPULAR = [("DA", "CGP"), ("CGP", "DA"), ("DA", "SYT"), ("DA", "RJS"), ("DA", "KLN"), ("DA", "CXB"),
           ("BHB", "SYT"), ("DA", "PCG"), ("RJS", "KLN"), ("DA", "MYN")]  # fmt: skip


async def burst(settings: Settings, requests: int = 300, concurrency: int = 20) -> str:
    base = f"http://127.0.0.1:{settings.ports.api}"
    today = dt.datetime.now(ZoneInfo(settings.timezone)).date()
    rng = random.Random(7)  # noqa: S311 - load shaping, not security
    latencies: list[float] = []
    statuses: Counter[int] = Counter()
    queue: asyncio.Queue[tuple[str, str, dt.date]] = asyncio.Queue()
    for _ in range(requests):
        origin, destination = rng.choice(POPULAR)
        queue.put_nowait((origin, destination, today + dt.timedelta(days=rng.randint(1, 7))))

    async def client(http: httpx.AsyncClient) -> None:
        while not queue.empty():
            origin, destination, day = queue.get_nowait()
            t0 = time.perf_counter()
            response = await http.get(
                "/api/v1/journeys", params={"from": origin, "to": destination, "date": day.isoformat()}
            )
            latencies.append(time.perf_counter() - t0)
            statuses[response.status_code] += 1

    t0 = time.perf_counter()
    async with httpx.AsyncClient(base_url=base, timeout=10) as http:
        await asyncio.gather(*(client(http) for _ in range(concurrency)))
    elapsed = time.perf_counter() - t0
    q = statistics.quantiles(latencies, n=100)
    return (
        f"search burst: {requests} requests in {elapsed:.1f}s ({requests / elapsed:.0f}/s), "
        f"status {dict(statuses)}, p50 {q[49] * 1000:.1f} ms, p99 {q[98] * 1000:.1f} ms"
    )
