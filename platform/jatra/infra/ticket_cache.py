"""Rendered e-tickets in Redis: rendered once, served many times.

The notifications worker renders each ticket as soon as its booking is confirmed, so the passenger's
download is a cache read and the API's event loop never waits on PDF work (at saturation rendering was a
third of the API process's CPU, py-spy). The API renders only on a miss (the download raced the worker,
or the entry expired). A confirmed ticket never changes; cancelling a booking drops its entry.
"""

from __future__ import annotations

import asyncio
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from redis.asyncio import Redis

from jatra.db.tickets import qr_payload
from jatra.infra import ticket_pdf, tickets
from jatra.telemetry import catalogue as c
from jatra.telemetry.metrics import counter

PREFIX = "jatra:tickets:pdf:"
TTL_S = 3600
PDFS = counter(c.TICKETS_PDF)


async def cached(redis: Redis, booking_id: str, by: str) -> bytes | None:
    """The rendered PDF if there is one; ``by`` names the asking process role (api, notifications)."""
    pdf = await redis.get(PREFIX + booking_id)
    if not isinstance(pdf, bytes):
        return None
    PDFS.labels(by, "cached").inc()
    return pdf


async def render(
    redis: Redis, key: Ed25519PrivateKey, booking_id: str, view: dict[str, Any], by: str
) -> bytes:
    # CPU work: off the event loop, so other requests keep flowing while it renders.
    pdf = await asyncio.to_thread(ticket_pdf.render, view, tickets.sign(key, qr_payload(view)))
    await redis.set(PREFIX + booking_id, pdf, ex=TTL_S)
    PDFS.labels(by, "rendered").inc()
    return pdf


async def get_or_render(
    redis: Redis, key: Ed25519PrivateKey, booking_id: str, view: dict[str, Any], by: str
) -> bytes:
    return await cached(redis, booking_id, by) or await render(redis, key, booking_id, view, by)


async def drop(redis: Redis, booking_id: str) -> None:
    await redis.delete(PREFIX + booking_id)
