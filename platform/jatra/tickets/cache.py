"""Rendered e-tickets in Redis: rendered once, served many times.

The notifications worker renders each ticket as soon as its booking is confirmed, so the passenger's
download is a cache read and the API's event loop never waits on PDF work (at saturation rendering was a
third of the API process's CPU, py-spy). A download that races the worker waits for its render instead of
rendering a second copy. A confirmed ticket never changes; cancelling a booking drops its entry.

Each entry keeps the account it belongs to beside the PDF (a hash: owner, pdf), so a download of a ticket
already rendered is one Redis read and no database session. An entry stands for a confirmed booking:
cancelling one marks its ticket void (a marker that outlives any entry or render lock) and drops the
entry, and no entry is stored for a booking marked void, so a render that was under way (a download that
read the booking just before the cancellation, a late or replayed confirmation event) cannot put it back.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from redis.asyncio import Redis

from jatra.infra.scripts import LuaScript
from jatra.telemetry import catalogue as c
from jatra.telemetry.metrics import counter
from jatra.tickets import signing
from jatra.tickets.pdf import render
from jatra.tickets.view import qr_payload

PREFIX = "jatra:tickets:owned:"  # a hash {owner, pdf}; was a bare PDF under "jatra:tickets:pdf:"
LOCK_PREFIX = "jatra:tickets:rendering:"
VOID_PREFIX = "jatra:tickets:void:"  # a cancelled booking's ticket: never stored again
TTL_S = 3600
RENDER_LOCK_S = 10  # far above one render (~25 ms), so only a dead renderer lets it lapse
VOID_TTL_S = 2 * TTL_S  # longer than any entry or render that began before the cancellation
WAIT_STEP_S = 0.01
PDFS = counter(c.TICKETS_PDF)
#: store the entry unless the ticket is void (both keys carry the booking id as their hash tag: one slot)
STORE = LuaScript(
    """
if redis.call('EXISTS', KEYS[2]) == 1 then return 0 end
redis.call('HSET', KEYS[1], 'owner', ARGV[1], 'pdf', ARGV[2])
redis.call('EXPIRE', KEYS[1], ARGV[3])
return 1
""",
    "ticket_store",
)


def entry_key(booking_id: str) -> str:
    return f"{PREFIX}{{{booking_id}}}"


def void_key(booking_id: str) -> str:
    return f"{VOID_PREFIX}{{{booking_id}}}"


class NotYours(Exception):
    """The ticket is rendered, but for another account: the asker must be told it does not exist."""


async def cached(redis: Redis, booking_id: str, owner: str, by: str, outcome: str = "cached") -> bytes | None:
    """The rendered PDF if there is one, counted under ``by`` (the asking role: api, notifications) and
    ``outcome`` (cached, or waited when another process was rendering it). Raises NotYours if it was
    rendered for an account other than ``owner``."""
    found_owner, pdf = await redis.hmget(entry_key(booking_id), ["owner", "pdf"])
    if not isinstance(pdf, bytes):
        return None
    if found_owner != owner.encode():
        raise NotYours
    PDFS.labels(by, outcome).inc()
    return pdf


async def store(redis: Redis, booking_id: str, owner: str, pdf: bytes) -> bool:
    """Keep a rendered PDF with the account it belongs to, for TTL_S, unless the booking's ticket was made
    void (cancelled): then nothing is stored and this returns False. One round trip, atomic."""
    return bool(await STORE(redis, [entry_key(booking_id), void_key(booking_id)], [owner, pdf, TTL_S]))


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


async def void(redis: Redis, booking_id: str) -> None:
    """The booking is being cancelled: its ticket is never stored again, and the stored one is dropped."""
    async with redis.pipeline(transaction=True) as pipe:
        pipe.set(void_key(booking_id), 1, ex=VOID_TTL_S)
        pipe.delete(entry_key(booking_id))
        await pipe.execute()
