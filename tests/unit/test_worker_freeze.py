"""A worker's GC freeze (JATRA_GC_FREEZE): after its warm-up, before its first pass, and only when asked."""

from __future__ import annotations

import asyncio
import dataclasses
from typing import Any

import pytest

from jatra import worker

_order: list[str] = []


async def _noting(_res: Any) -> int:
    _order.append("pass")
    await asyncio.Event().wait()  # the first pass never ends: the test sees what came before it
    return 0


@pytest.mark.parametrize("freeze", [True, False])
async def test_the_gc_freeze_runs_once_before_the_first_pass_and_only_when_asked(
    monkeypatch: pytest.MonkeyPatch, freeze: bool
) -> None:
    """JATRA_GC_FREEZE: what a worker holds after its warm-up is kept out of later full collections
    (jatra.telemetry.gc_pauses), so the freeze must come after the warm-up and before the first pass."""
    spec = dataclasses.replace(worker.WORKERS["reaper"], iteration=f"{__name__}:_noting")
    assert not spec.warm  # no warm-up to stand in for here
    monkeypatch.setattr(worker.gc_pauses, "freeze", lambda: _order.append("freeze") or 0)
    _order.clear()
    loop = asyncio.create_task(worker._loop("reaper", spec, object(), freeze=freeze))  # type: ignore[arg-type]
    try:
        for _ in range(100):
            if _order:
                break
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.05)
    finally:
        loop.cancel()
        await asyncio.gather(loop, return_exceptions=True)
    assert _order == (["freeze", "pass"] if freeze else ["pass"])
