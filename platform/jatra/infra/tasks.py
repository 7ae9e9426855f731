"""Stopping a background task for good."""

from __future__ import annotations

import asyncio
import contextlib

#: how long one cancellation is given before it is sent again
RECANCEL_S = 0.5


async def stop(task: asyncio.Task[None] | None) -> None:
    """Cancel ``task`` and wait until it has ended. A cancellation can be swallowed on its way: the
    revocation list's listener, cancelled while it subscribed through redis-py, went on to follow its
    subscription, and the app's shutdown, which had cancelled it once, waited for it forever (where
    inside redis-py it was lost is not pinned down). So it is sent again until the task ends; the
    task's own loops also stop at a closed flag."""
    while task is not None and not task.done():
        task.cancel()
        await asyncio.wait({task}, timeout=RECANCEL_S)
    if task is not None and not task.cancelled():
        with contextlib.suppress(asyncio.CancelledError, Exception):
            task.result()  # retrieved: no "exception was never retrieved" at exit
