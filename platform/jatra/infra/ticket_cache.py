"""Rendered e-tickets in Redis: rendered once (by whoever needs it first), served many times.

A confirmed ticket never changes; cancelling a booking drops its entry.
"""

from __future__ import annotations

import asyncio
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from redis.asyncio import Redis

from jatra.db.tickets import qr_payload
from jatra.infra import ticket_pdf, tickets

PREFIX = "jatra:tickets:pdf:"
TTL_S = 3600


async def get_or_render(redis: Redis, key: Ed25519PrivateKey, booking_id: str, view: dict[str, Any]) -> bytes:
    cached = await redis.get(PREFIX + booking_id)
    if isinstance(cached, bytes):
        return cached
    # CPU work: off the event loop, so other requests keep flowing while it renders.
    pdf = await asyncio.to_thread(ticket_pdf.render, view, tickets.sign(key, qr_payload(view)))
    await redis.set(PREFIX + booking_id, pdf, ex=TTL_S)
    return pdf


async def drop(redis: Redis, booking_id: str) -> None:
    await redis.delete(PREFIX + booking_id)
