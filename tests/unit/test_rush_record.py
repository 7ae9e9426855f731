from __future__ import annotations

import asyncio
import datetime as dt
import random
from collections import Counter

from hypothesis import given
from hypothesis import strategies as st

from jatra.rush.options import Options
from jatra.rush.passenger import travel_day
from jatra.rush.record import Recorder, outcome_of


@given(st.lists(st.floats(0.0001, 10), min_size=2, max_size=50))
def test_percentiles_stay_within_the_data(samples: list[float]) -> None:
    rec = Recorder()
    for s in samples:
        rec.step("book", 202, s)
    row = rec.latency_table()["book"]
    assert row["p50_ms"] <= row["p95_ms"] <= row["p99_ms"] <= row["max_ms"] + 0.1
    assert row["count"] == len(samples)


def test_conflicts_are_kept_apart_from_errors() -> None:
    assert [outcome_of(s) for s in (201, 409, 429, 422, 503, 500, 502)] == [
        "ok",
        "conflict",
        "rate_limited",
        "client_error",
        "unavailable",  # 503 + Retry-After: shed or a dependency down, told apart from a failure
        "server_error",
        "server_error",
    ]


def test_travel_days_stay_in_the_window_and_the_nearest_is_most_wanted() -> None:
    today = dt.date(2026, 11, 21)
    opts = Options(base_url="", provider_url="", first_day=7, days=3)
    rng = random.Random(1)
    days = Counter(travel_day(opts, rng, today) for _ in range(2000))
    window = [today + dt.timedelta(days=d) for d in (7, 8, 9)]
    assert set(days) == set(window)
    assert days[window[0]] > days[window[1]] > days[window[2]]


async def test_a_trip_that_raises_is_counted_not_lost() -> None:
    rec = Recorder()

    async def broken() -> None:
        raise ValueError("an answer of another shape")

    async def fine() -> None:
        return None

    for work in (broken(), fine()):
        task = asyncio.create_task(work)
        task.add_done_callback(rec.count_crash)
        await asyncio.gather(task, return_exceptions=True)
    await asyncio.sleep(0)  # done callbacks run on the next loop pass
    assert rec.outcomes["trip"] == {"generator_error": 1}
