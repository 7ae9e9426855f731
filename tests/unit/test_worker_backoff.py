"""A worker's pause after failed passes doubles from 1 s up to its spec's bound."""

from __future__ import annotations

import asyncio
import dataclasses
from typing import Any

import pytest

from jatra import worker

_passes: list[int] = []


async def _failing(_res: Any) -> int:
    _passes.append(1)
    raise ConnectionError("redis is down")


@pytest.mark.parametrize(("name", "bound"), [("reaper", 5.0), ("timetable", 60.0)])
async def test_failed_passes_back_off_up_to_the_workers_bound(
    monkeypatch: pytest.MonkeyPatch, name: str, bound: float
) -> None:
    """The reaper's bound is 5 s: after a Redis outage, holds wait for its first pass (the journeys' sales
    restored: jatra.inventory.resync), so a minute of doubled pauses would be a minute of refused holds."""
    assert worker.WORKERS[name].max_backoff_s == bound
    spec = dataclasses.replace(worker.WORKERS[name], iteration=f"{__name__}:_failing")
    pauses: list[float] = []
    done = asyncio.Event()

    async def sleep(seconds: float) -> None:
        """Notes the pause instead of taking it; the ninth never ends."""
        pauses.append(seconds)
        if len(pauses) == 9:
            done.set()
            await asyncio.Event().wait()

    monkeypatch.setattr(worker.asyncio, "sleep", sleep)
    _passes.clear()
    loop = asyncio.create_task(worker._loop(name, spec, object()))  # type: ignore[arg-type]
    try:
        await asyncio.wait_for(done.wait(), 5)
    finally:
        loop.cancel()
        await asyncio.gather(loop, return_exceptions=True)
    doubling = [1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0]
    assert pauses == [min(p, bound) for p in doubling]
    assert len(_passes) == 9
