"""Rendered e-tickets in Redis: rendered once, served many times.

Whoever asks first renders a ticket, once: the notifications worker as its booking is confirmed, or the
passenger's download if it comes first (in a rush it nearly always does: the long poll answers the moment
the payment settles, before the confirmation event has reached the worker), in a thread off the event
loop. Anyone who asks while it renders waits for that render instead of drawing a second copy. A
confirmed ticket never changes; cancelling a booking drops its entry.

Each entry keeps the account it belongs to beside the PDF (a hash: owner, pdf), so a download of a ticket
already rendered is one Redis round trip and no database session. An entry stands for a confirmed booking:
cancelling one marks its ticket void (a marker that outlives any entry or render lock) and drops the
entry, and no entry is stored for a booking marked void, so a render that was under way (a download that
read the booking just before the cancellation, a late or replayed confirmation event) cannot put it back.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Awaitable, Callable
from typing import Any

import structlog
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from opentelemetry import trace
from redis.asyncio import Redis

from jatra.infra.scripts import LuaScript
from jatra.telemetry import catalogue as c
from jatra.telemetry.metrics import counter
from jatra.tickets import signing
from jatra.tickets.pdf import render
from jatra.tickets.view import qr_payload

PREFIX = "jatra:tickets:owned:"  # a hash {owner, pdf}; was a bare PDF under "jatra:tickets:pdf:"
LOCK_PREFIX = "jatra:tickets:rendering:"  # + {booking id}: the entry's hash tag, for one script
VOID_PREFIX = "jatra:tickets:void:"  # a cancelled booking's ticket: never stored again
TTL_S = 3600
RENDER_LOCK_S = 10  # far above one render (~25 ms), so only a dead renderer lets it lapse
VOID_TTL_S = 2 * TTL_S  # longer than any entry or render that began before the cancellation
WAIT_STEP_S = 0.01
PDFS = counter(c.TICKETS_PDF)
tracer = trace.get_tracer(__name__)
log = structlog.get_logger()
#: the entry if there is one, else the render lock taken for this asker (1), or 0 while another holds it:
#: one round trip for a download, cached or not (the keys share the booking id as their hash tag)
CLAIM = LuaScript(
    """
local found = redis.call('HMGET', KEYS[1], 'owner', 'pdf')
if found[2] then return found end
if redis.call('SET', KEYS[2], ARGV[1], 'NX', 'PX', ARGV[2]) then return 1 end
return 0
""",
    "ticket_claim",
)
#: store the entry unless the ticket is void, and let go of the render lock if this asker still holds it
STORE = LuaScript(
    """
local stored = 0
if redis.call('EXISTS', KEYS[2]) == 0 then
  redis.call('HSET', KEYS[1], 'owner', ARGV[1], 'pdf', ARGV[2])
  redis.call('EXPIRE', KEYS[1], ARGV[3])
  stored = 1
end
if ARGV[4] ~= '' and redis.call('GET', KEYS[3]) == ARGV[4] then redis.call('DEL', KEYS[3]) end
return stored
""",
    "ticket_store",
)
#: let go of the render lock if this asker still holds it (a render that failed or was refused)
RELEASE = LuaScript(
    """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
""",
    "ticket_release",
)


def entry_key(booking_id: str) -> str:
    return f"{PREFIX}{{{booking_id}}}"


def void_key(booking_id: str) -> str:
    return f"{VOID_PREFIX}{{{booking_id}}}"


def lock_key(booking_id: str) -> str:
    return f"{LOCK_PREFIX}{{{booking_id}}}"


class NotYours(Exception):
    """The ticket is rendered, but for another account: the asker must be told it does not exist."""


def _served(found_owner: object, pdf: object, owner: str, by: str, outcome: str) -> bytes | None:
    """The stored PDF for ``owner``, counted under ``by`` and ``outcome`` (cached, or waited while another
    process rendered it); None if nothing is stored. Raises NotYours if it was stored for another account."""
    if not isinstance(pdf, bytes):
        return None
    if found_owner != owner.encode():
        raise NotYours
    PDFS.labels(by, outcome).inc()
    return pdf


async def store(redis: Redis, booking_id: str, owner: str, pdf: bytes, token: str = "") -> bool:
    """Keep a rendered PDF with the account it belongs to, for TTL_S, unless the booking's ticket was made
    void (cancelled): then nothing is stored and this returns False. With the ``token`` of the render lock
    this asker holds, the lock is let go in the same step. One round trip, atomic."""
    keys = [entry_key(booking_id), void_key(booking_id), lock_key(booking_id)]
    return bool(await STORE(redis, keys, [owner, pdf, TTL_S, token]))


async def get_or_render(
    redis: Redis,
    key: Ed25519PrivateKey,
    booking_id: str,
    owner: str,
    load_view: Callable[[], Awaitable[dict[str, Any]]],
    by: str,
) -> bytes:
    """The ticket's PDF, rendered at most once however many processes ask at the same moment.

    One script either answers the stored entry or takes a short render lock for this asker; the others
    wait for the holder's result (a passenger's download often races the notifications worker). A renderer
    that dies only delays the others by the lock's TTL, after which one of them takes it. ``owner`` is the
    asking account (user id): an entry stored for another raises NotYours. ``load_view`` is called only by
    the asker that renders, under the lock, and may raise (the booking is not the asker's, not confirmed):
    the lock is then let go. A download that renders is three round trips: the claim, ``load_view``'s read
    and the store, which lets go of the lock. An asker refused by ``load_view`` (another account's booking,
    one not confirmed) holds the lock for that one read; the owner waits that long.
    """
    token = os.urandom(8).hex()
    keys = [entry_key(booking_id), lock_key(booking_id)]
    outcome = "cached"
    deadline = time.monotonic() + RENDER_LOCK_S
    while True:
        claimed = await CLAIM(redis, keys, [token, RENDER_LOCK_S * 1000])
        if isinstance(claimed, list):
            pdf = _served(claimed[0], claimed[1], owner, by, outcome)
            if pdf is not None:
                return pdf
        if claimed == 1 or time.monotonic() > deadline:
            break  # ours to render; past the deadline a slow holder (or several in turn): render here too
        outcome = "waited"
        await asyncio.sleep(WAIT_STEP_S)
    try:
        view = await load_view()
        with tracer.start_as_current_span("tickets.render", attributes={"jatra.by": by}):
            # CPU work: off the event loop, so other requests keep flowing while it renders.
            pdf = await asyncio.to_thread(render, view, signing.sign(key, qr_payload(view)))
    except BaseException:
        try:  # the lock lapses with its TTL anyway: a failed release must not hide why the render stopped
            await RELEASE(redis, [lock_key(booking_id)], [token])
        except Exception as e:
            log.warning("tickets.lock_release_failed", error_type=type(e).__name__)
        raise
    await store(redis, booking_id, owner, pdf, token)
    PDFS.labels(by, "rendered").inc()
    return pdf


async def void(redis: Redis, booking_id: str) -> None:
    """The booking is being cancelled: its ticket is never stored again, and the stored one is dropped."""
    async with redis.pipeline(transaction=True) as pipe:
        pipe.set(void_key(booking_id), 1, ex=VOID_TTL_S)
        pipe.delete(entry_key(booking_id))
        await pipe.execute()
