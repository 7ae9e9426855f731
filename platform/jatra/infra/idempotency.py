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

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from jatra.db.bookings import IdempotencyKey
from jatra.errors import Conflict, InvalidInput, InvalidParam
from jatra.infra.pg import Statements
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


#: the key claimed, in one exchange and its own transaction (jatra.infra.pg); no row if it exists already
CLAIM = """
    INSERT INTO idempotency_keys (user_id, key, request_hash, status, created_at, expires_at)
    VALUES (%(user_id)s, %(key)s, %(digest)s, 'IN_FLIGHT', %(now)s, %(expires_at)s)
    ON CONFLICT DO NOTHING
    RETURNING key
    """
#: a failed request's key forgotten (only while in flight: a stored answer stays)
FORGET = """
    DELETE FROM idempotency_keys WHERE user_id = %(user_id)s AND key = %(key)s AND status = 'IN_FLIGHT'
    RETURNING key
    """


@dataclass(frozen=True, slots=True)
class _Key:
    key: str


async def begin(
    sessions: async_sessionmaker[AsyncSession], pg: Statements, user_id: uuid.UUID, key: str, digest: str
) -> Replay | None:
    """Claim the key (committed at once, so concurrent requests see it) or return what to replay. The
    claim is one statement through ``pg``; a key seen before is read through a session (rare)."""
    now = dt.datetime.now(dt.UTC)
    params = {"user_id": user_id, "key": key, "digest": digest, "now": now, "expires_at": now + TTL}
    if await pg.one(CLAIM, params, _Key) is not None:
        OUTCOMES.labels("new").inc()
        return None
    async with sessions() as session:
        return await _seen_before(session, user_id, key, digest, now)


async def _seen_before(
    session: AsyncSession, user_id: uuid.UUID, key: str, digest: str, now: dt.datetime
) -> Replay | None:
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


async def release(pg: Statements, user_id: uuid.UUID, key: str) -> None:
    """The request failed: forget the key so that a corrected retry can run."""
    await pg.one(FORGET, {"user_id": user_id, "key": key}, _Key)
