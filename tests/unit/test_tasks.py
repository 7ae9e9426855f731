"""Stopping a background task for good, even one that swallows a cancellation (as the revocation list's
listener did inside redis-py, which hung the app's shutdown)."""

from __future__ import annotations

import asyncio
import contextlib

from jatra.infra.tasks import stop


async def test_a_task_that_swallows_its_first_cancellation_is_stopped() -> None:
    swallowed = []

    async def stubborn() -> None:
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            swallowed.append(True)  # as if it had timed out instead
        await asyncio.sleep(30)

    task = asyncio.create_task(stubborn())
    await asyncio.sleep(0)
    stopper = asyncio.create_task(stop(task))
    await asyncio.wait({stopper}, timeout=5)  # not wait_for: its own cancel would stop the task too
    try:
        assert stopper.done(), "stop() was still waiting for a task that swallowed one cancellation"
        assert task.cancelled() and swallowed == [True]
    finally:
        task.cancel()
        stopper.cancel()


async def test_nothing_to_stop_and_a_task_that_failed() -> None:
    await stop(None)

    async def fails() -> None:
        raise RuntimeError("a bug")

    task = asyncio.create_task(fails())
    with contextlib.suppress(RuntimeError):
        await task
    await stop(task)  # ended already: its exception is not raised again
    assert task.done()
