from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import itertools
import random
import time
from collections.abc import Awaitable, Callable, Iterator
from typing import Any
from zoneinfo import ZoneInfo

from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import event, select
from sqlalchemy.engine import Engine
from sqlalchemy.ext.asyncio import AsyncSession

from jatra.db.catalog import Coach, Journey, Seat
from jatra.db.inventory import SeatSale


def travel_day(days_ahead: int = 1) -> dt.date:
    return dt.datetime.now(ZoneInfo("Asia/Dhaka")).date() + dt.timedelta(days=days_ahead)


def sample(metrics_text: str, name: str, **labels: str) -> float:
    """The value of one sample in a Prometheus text exposition (0 if absent)."""
    for family in text_string_to_metric_families(metrics_text):
        for s in family.samples:
            if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()):
                return float(s.value)
    return 0.0


_TRY_AGAIN = (b"/problems/overloaded", b"/problems/seats-resyncing")


async def patiently(call: Callable[[], Awaitable[Any]], attempts: int = 30) -> Any:
    """``call()`` again after the Retry-After of each admission-control refusal (503 ``.../overloaded``)
    and of each hold refused while Redis is given back a journey's sales (503 ``.../seats-resyncing``), as
    the app does; any other answer is returned. For helpers that tests call in bursts."""
    for _ in range(attempts - 1):
        response = await call()
        if response.status_code != 503 or not any(p in response.content for p in _TRY_AGAIN):
            return response
        await asyncio.sleep(float(response.headers["retry-after"]) * random.uniform(0.5, 1.5))
    return await call()


async def a_journey(
    client: Any,
    origin: str = "DA",
    destination: str = "SYT",
    days_ahead: int = 2,
    calls_at: tuple[str, ...] = (),
) -> int:
    """A journey id from a real search: a train running that day that also calls at ``calls_at``."""

    async def ids(a: str, b: str) -> set[int]:
        params = {"from": a, "to": b, "date": travel_day(days_ahead).isoformat()}
        journeys = (await patiently(lambda: client.get("/api/v1/journeys", params=params))).json()["journeys"]
        return {j["journey_id"] for j in journeys}

    found = await ids(origin, destination)
    for a, b in itertools.pairwise(calls_at):
        found &= await ids(a, b)
    assert found, f"no {origin}-{destination} journey calling at {calls_at} in {days_ahead} days"
    return int(random.choice(sorted(found)))


async def free_seats(client: Any, journey_id: int, origin: str, destination: str, n: int) -> list[int]:
    """n random seats free on the segment right now (tests share one database across runs)."""
    params = {"from": origin, "to": destination}
    path = f"/api/v1/journeys/{journey_id}/seats"
    seats = (await patiently(lambda: client.get(path, params=params))).json()["seats"]
    free = [s["seat_id"] for s in seats if s["status"] == "free"]
    return random.sample(free, n)


async def eventually(check: Callable[[], Awaitable[bool]], within_s: float, what: str) -> None:
    """Wait until ``check()`` holds, polling; fail naming ``what`` if it does not within ``within_s``."""
    deadline = time.monotonic() + within_s
    while not await check():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {within_s}s: {what}")
        await asyncio.sleep(0.05)


@contextlib.contextmanager
def orm_statements() -> Iterator[list[str]]:
    """The SQL every SQLAlchemy engine in this process (the app's included) runs inside the block."""
    seen: list[str] = []

    def record(*args: object) -> None:
        seen.append(str(args[2]))  # (connection, cursor, statement, ...)

    event.listen(Engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(Engine, "before_cursor_execute", record)


async def unsold_seats(session: AsyncSession, journey: Journey) -> list[int]:
    """Seats of the journey's train that nobody has bought on any leg of it: a test's own, so it touches
    no other test's sales."""
    sold = select(SeatSale.seat_id).where(SeatSale.journey_id == journey.id)
    found = await session.scalars(
        select(Seat.id)
        .join(Coach, Coach.id == Seat.coach_id)
        .where(Coach.train_number == journey.train_number, Seat.id.not_in(sold))
    )
    return list(found.all())
