"""Idempotency keys in Postgres: the first request with a key runs, every later one gets its answer.

Same key + same body: the stored response is replayed (marked by the `Idempotent-Replayed` header).
Same key + another body: 422. Kept 24 h. Only a success is stored: the key is written in the same
transaction as the work and its answer, so a request that fails writes nothing and a corrected retry
can run. A retry sent while the first request is still running waits for that transaction (Postgres's
unique index) and then replays its answer.

The claim is a step of the caller's own statement (the booking's, in the function
``jatra_accept_booking``: an ``INSERT ... ON CONFLICT (user_id, key) DO NOTHING RETURNING key`` of the key
with its answer, ``DONE``, expiring after :data:`TTL`), so claiming costs no exchange of its own; this
module gives it its times (:func:`claim_times`) and says what a key found there means (:func:`seen`).
DO NOTHING takes no lock on a key that exists (DO UPDATE would, even to change nothing), so replays of one
key do not queue on its row; a concurrent claim of the same key waits for the first one's transaction.

A stale key (expired, or left ``IN_FLIGHT`` by an older version, which committed its claim first, and
abandoned) is deleted in the transaction that claims it again (:func:`forget_stale`), so a concurrent
request with the same key waits for that one and replays its answer; a fresh ``IN_FLIGHT`` one is a 409.
Expired keys are also deleted by the outbox relay's retention (:mod:`jatra.infra.retention`), so one can
vanish between a claim it refused and :func:`seen`.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import uuid
from dataclasses import dataclass
from typing import Any

from jatra.errors import Conflict, InvalidInput, InvalidParam
from jatra.infra.pg import Statements, Transaction
from jatra.telemetry import catalogue as c
from jatra.telemetry.metrics import counter

OUTCOMES = counter(c.IDEMPOTENCY)
TTL = dt.timedelta(hours=24)
#: an IN_FLIGHT key older than this belongs to a request that died; a retry may take it over
ABANDONED_AFTER = dt.timedelta(seconds=60)
REPLAYED_HEADER = "Idempotent-Replayed"

#: a stale key deleted (expired, or IN_FLIGHT and abandoned), in the transaction that claims it again
FORGET_STALE = """
    DELETE FROM idempotency_keys
    WHERE user_id = %(user_id)s AND key = %(key)s
      AND (expires_at <= %(now)s OR (status = 'IN_FLIGHT' AND created_at <= %(abandoned)s))
    RETURNING key
    """


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


def claim_times() -> dict[str, dt.datetime]:
    """The times the claim takes: now, and when the key expires."""
    now = dt.datetime.now(dt.UTC)
    return {"now": now, "expires_at": now + TTL}


def claimed() -> None:
    OUTCOMES.labels("new").inc()


class Stale:
    """:func:`seen` found a stale key: the caller claims it again, with :func:`forget_stale` first in the
    same transaction."""


STALE = Stale()


async def forget_stale(tx: Transaction, user_id: uuid.UUID, key: str) -> None:
    """Delete the key if it is stale, in ``tx``: a concurrent request doing the same waits on its row until
    ``tx`` ends, and then finds the key this one claimed."""
    now = dt.datetime.now(dt.UTC)
    params = {"user_id": user_id, "key": key, "now": now, "abandoned": now - ABANDONED_AFTER}
    await tx.one(FORGET_STALE, params, _Key)


#: a key as :func:`seen` reads it, in one exchange (jatra.infra.pg)
SEEN = """
    SELECT request_hash, status, created_at, expires_at, response_status, response_body, response_headers
    FROM idempotency_keys WHERE user_id = %(user_id)s AND key = %(key)s
    """


@dataclass(frozen=True, slots=True)
class _Seen:
    request_hash: str
    status: str
    created_at: dt.datetime
    expires_at: dt.datetime
    response_status: int | None
    response_body: dict[str, Any] | None
    response_headers: dict[str, str] | None


@dataclass(frozen=True, slots=True)
class _Key:
    key: str


async def seen(pg: Statements, user_id: uuid.UUID, key: str, digest: str) -> Replay | Stale | None:
    """What a key that the claim did not take means (replays and the error path): its answer to replay;
    :data:`STALE` when it is stale (claim again, see :func:`forget_stale`); None when there is none (the
    work was refused for a reason of its own, or the key expired and the retention deleted it since).
    Raises for a key used with another body, and for one an older version holds in flight."""
    row = await pg.one(SEEN, {"user_id": user_id, "key": key}, _Seen)
    if row is None:
        return None
    now = dt.datetime.now(dt.UTC)
    if row.expires_at <= now or (row.status == "IN_FLIGHT" and row.created_at <= now - ABANDONED_AFTER):
        return STALE
    if row.request_hash != digest:
        OUTCOMES.labels("mismatch").inc()
        raise KeyReusedWithAnotherRequest
    if row.status == "IN_FLIGHT":
        OUTCOMES.labels("in_flight").inc()
        raise RequestInFlight
    OUTCOMES.labels("replayed").inc()
    return Replay(row.response_status or 200, row.response_body or {}, row.response_headers or {})
