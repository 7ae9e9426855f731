"""Idempotency keys in Postgres: the first request with a key runs, every later one gets its answer.

Same key + same body: the stored response is replayed (marked by the `Idempotent-Replayed` header).
Same key + another body: 422. Same key while the first is still running: 409. Kept 24 h. Only a
success is stored: a request that failed (4xx/5xx) releases its key, so a corrected retry can run.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from jatra.db.bookings import IdempotencyKey
from jatra.errors import Conflict, InvalidInput, InvalidParam
from jatra.telemetry import catalogue as c
from jatra.telemetry.metrics import counter

OUTCOMES = counter(c.IDEMPOTENCY)
TTL = dt.timedelta(hours=24)
#: an IN_FLIGHT key older than this belongs to a request that died; a retry may take it over
ABANDONED_AFTER = dt.timedelta(seconds=60)
REPLAYED_HEADER = "Idempotent-Replayed"


class KeyReusedWithAnotherRequest(InvalidInput):
    slug = "idempotency-key-reused"
    title = "Idempotency-Key reused with a different request"

    def __init__(self) -> None:
        super().__init__(InvalidParam("Idempotency-Key", "already used with a different request body"))


class RequestInFlight(Conflict):
    slug = "request-in-flight"
    title = "A request with this Idempotency-Key is still being processed"

    def __init__(self) -> None:
        super().__init__("the first request with this Idempotency-Key has not finished; retry shortly")


@dataclass(frozen=True, slots=True)
class Replay:
    status: int
    body: dict[str, Any]
    headers: dict[str, str]


def request_hash(body: Any) -> str:
    return hashlib.sha256(json.dumps(body, sort_keys=True, default=str).encode()).hexdigest()


async def begin(session: AsyncSession, user_id: uuid.UUID, key: str, digest: str) -> Replay | None:
    """Claim the key (committed at once, so concurrent requests see it) or return what to replay."""
    now = dt.datetime.now(dt.UTC)
    claimed = await session.scalar(
        insert(IdempotencyKey)
        .values(user_id=user_id, key=key, request_hash=digest, created_at=now, expires_at=now + TTL)
        .on_conflict_do_nothing()
        .returning(IdempotencyKey.key)
    )
    if claimed is not None:
        await session.commit()
        OUTCOMES.labels("new").inc()
        return None
    row = (
        await session.scalars(
            select(IdempotencyKey).where(IdempotencyKey.user_id == user_id, IdempotencyKey.key == key)
        )
    ).one()
    stale = row.expires_at <= now or (row.status == "IN_FLIGHT" and row.created_at <= now - ABANDONED_AFTER)
    if stale:
        await session.execute(
            update(IdempotencyKey)
            .where(IdempotencyKey.user_id == user_id, IdempotencyKey.key == key)
            .values(request_hash=digest, status="IN_FLIGHT", created_at=now, expires_at=now + TTL,
                    response_status=None, response_body=None, response_headers=None)
        )  # fmt: skip
        await session.commit()
        OUTCOMES.labels("new").inc()
        return None
    if row.request_hash != digest:
        OUTCOMES.labels("mismatch").inc()
        raise KeyReusedWithAnotherRequest
    if row.status == "IN_FLIGHT":
        OUTCOMES.labels("in_flight").inc()
        raise RequestInFlight
    OUTCOMES.labels("replayed").inc()
    return Replay(row.response_status or 200, row.response_body or {}, row.response_headers or {})


async def complete(
    session: AsyncSession,
    user_id: uuid.UUID,
    key: str,
    status: int,
    body: dict[str, Any],
    headers: dict[str, str],
) -> None:
    """Store the response, in the caller's transaction (the one that did the work)."""
    await session.execute(
        update(IdempotencyKey)
        .where(IdempotencyKey.user_id == user_id, IdempotencyKey.key == key)
        .values(status="DONE", response_status=status, response_body=body, response_headers=headers)
    )


async def release(session: AsyncSession, user_id: uuid.UUID, key: str) -> None:
    """The request failed: forget the key so that a corrected retry can run."""
    await session.rollback()
    await session.execute(
        delete(IdempotencyKey).where(
            IdempotencyKey.user_id == user_id, IdempotencyKey.key == key, IdempotencyKey.status == "IN_FLIGHT"
        )
    )
    await session.commit()
