"""Rendered e-tickets in Redis: rendered once, served many times.

The notifications worker renders each ticket as soon as its booking is confirmed, so the passenger's
download is a cache read and the API's event loop never waits on PDF work (at saturation rendering was a
third of the API process's CPU, py-spy). A download that races the worker waits for its render instead of
rendering a second copy. A confirmed ticket never changes; cancelling a booking drops its entry.

Each entry keeps the account it belongs to beside the PDF (a hash: owner, pdf), so a download of a ticket
already rendered is one Redis read and no database session: an entry exists only for a booking that was
confirmed, and it is dropped when the booking is cancelled.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from redis.asyncio import Redis

from jatra.telemetry import catalogue as c
from jatra.telemetry.metrics import counter
from jatra.tickets import signing
from jatra.tickets.pdf import render
from jatra.tickets.view import qr_payload

PREFIX = "jatra:tickets:owned:"  # a hash {owner, pdf}; was a bare PDF under "jatra:tickets:pdf:"
LOCK_PREFIX = "jatra:tickets:rendering:"
TTL_S = 3600
RENDER_LOCK_S = 10  # far above one render (~25 ms), so only a dead renderer lets it lapse
WAIT_STEP_S = 0.01
PDFS = counter(c.TICKETS_PDF)


class NotYours(Exception):
    """The ticket is rendered, but for another account: the asker must be told it does not exist."""


async def cached(redis: Redis, booking_id: str, owner: str, by: str, outcome: str = "cached") -> bytes | None:
    """The rendered PDF if there is one, counted under ``by`` (the asking role: api, notifications) and
    ``outcome`` (cached, or waited when another process was rendering it). Raises NotYours if it was
    rendered for an account other than ``owner``."""
    found_owner, pdf = await redis.hmget(PREFIX + booking_id, ["owner", "pdf"])
    if not isinstance(pdf, bytes):
        return None
    if found_owner != owner.encode():
        raise NotYours
    PDFS.labels(by, outcome).inc()
    return pdf


async def store(redis: Redis, booking_id: str, owner: str, pdf: bytes) -> None:
    """Keep a rendered PDF with the account it belongs to, for TTL_S (one round trip, atomically)."""
    async with redis.pipeline(transaction=True) as pipe:
        pipe.hset(PREFIX + booking_id, mapping={"owner": owner, "pdf": pdf})
        pipe.expire(PREFIX + booking_id, TTL_S)
        await pipe.execute()


async def get_or_render(
    redis: Redis,
    key: Ed25519PrivateKey,
    booking_id: str,
    owner: str,
    load_view: Callable[[], Awaitable[dict[str, Any]]],
    by: str,
) -> bytes:
    """The ticket's PDF, rendered at most once however many processes ask at the same moment.

    The first asker takes a short Redis lock and renders; the others wait for its result (a passenger's
    download often races the notifications worker). A renderer that dies only delays the others by the
    lock's TTL, after which they render themselves. ``owner`` is the booking's account (user id).
    """
    pdf = await cached(redis, booking_id, owner, by)
    if pdf is not None:
        return pdf
    lock = redis.lock(LOCK_PREFIX + booking_id, timeout=RENDER_LOCK_S)  # released only by its owner
    deadline = time.monotonic() + RENDER_LOCK_S
    while not await lock.acquire(blocking=False):
        await asyncio.sleep(WAIT_STEP_S)
        if (found := await cached(redis, booking_id, owner, by, "waited")) is not None:
            return found
        if time.monotonic() > deadline:
            break  # the renderer died holding the lock: render it here
    try:
        view = await load_view()
        # CPU work: off the event loop, so other requests keep flowing while it renders.
        pdf = await asyncio.to_thread(render, view, signing.sign(key, qr_payload(view)))
        await store(redis, booking_id, owner, pdf)
    finally:
        if await lock.owned():
            await lock.release()
    PDFS.labels(by, "rendered").inc()
    return pdf


async def drop(redis: Redis, booking_id: str) -> None:
    await redis.delete(PREFIX + booking_id)
