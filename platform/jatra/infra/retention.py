"""Rows a booking writes beside itself, deleted once past their retention: sent outbox rows and expired
idempotency keys; and refresh tokens long expired.

A booking's transaction writes the booking, two outbox rows and its idempotency key. The booking is the
record; the other two are kept only for a while:

- *sent outbox rows*, for ``JATRA_OUTBOX_RETENTION_S`` (3 days): the relay marks a row sent and never
  reads it again (the broker has the message and consumers dedupe on its id). Without this the table grew
  by two rows a booking for ever (452,491 rows on the dev stack at the eighth stop).
- *idempotency keys*, until they expire (24 h, ``jatra.infra.idempotency.TTL``): a key past it means
  nothing (a request with it runs again), and was deleted only when the same key came again, so the
  table grew by a row a booking for ever (208,129 rows on the dev stack at the ninth stop).

- *refresh tokens*, once expired longer than ``JATRA_REFRESH_RETENTION_S`` ago (7 days): a row a login
  and a row a rotation (an active session adds one every quarter hour). An expired token refreshes
  nothing (expiry is checked before reuse); until it is deleted a logout with it revokes its login, after
  that it answers 401 as any unknown token does. A copy of a token rotated two weeks before is what only
  a thief still holds: it loses the power to log its owner out, nothing else.

Every outbox relay (a deployment may run several) deletes at most every ``EVERY_S``: of the outbox, what
is due among the ``BATCH`` oldest sent rows; of the keys, up to ``BATCH`` expired ones, the first expired
first. No pass reads more than ``BATCH`` rows of either, whatever a table holds: a short statement between
two of the relay's passes, which the booking path waits on. Two relays pruning at once take the same rows:
the second waits for the first's row locks (milliseconds) and then finds them gone. The outbox's oldest are
read by its key's index (its order is the writing and sending order; on the dev stack's 452,491-row table:
3.9 ms to delete 2,000, 0.14 ms for a head of 500 with none due; a ``LIMIT`` on the old rows instead read
the whole table whenever fewer were due, 70 ms); the keys' by the index on ``expires_at`` (on the dev
stack's 208,129 keys, ``bench/results/retention/``: 0.07-0.08 ms to execute with none due, 5.8-6.1 ms to
delete 2,000, and 0.6-0.9 ms to plan either; the deleted keys' index entries stay at the index's head until
vacuumed, which those runs did not have). 48,000 rows a minute of each: the outbox's two rows a booking at
24,000 bookings a minute, a key a booking at 48,000. Counted in ``jatra_retention_pruned_total{table}``,
logged as ``retention.pruned``, in the span ``retention.prune``.
A failed prune is logged (``retention.prune_failed``) and does not hold up the relay's pass.
"""

from __future__ import annotations

import time
from typing import Any

import structlog
from opentelemetry import trace
from sqlalchemy import TextClause, text

from jatra.infra.resources import Resources
from jatra.telemetry import catalogue as c
from jatra.telemetry.metrics import counter

log = structlog.get_logger()
tracer = trace.get_tracer(__name__)
PRUNED = counter(c.RETENTION_PRUNED)
EVERY_S = 2.5
BATCH = 2000
#: the oldest sent rows, those of them sent longer ago than the retention deleted
OUTBOX = text(
    "WITH head AS (SELECT id, sent_at FROM outbox WHERE sent_at IS NOT NULL ORDER BY id LIMIT :batch)"
    " DELETE FROM outbox o USING head"
    " WHERE o.id = head.id AND head.sent_at < now() - make_interval(secs => :keep_s)"
)
#: the keys that expired first, up to a batch (an index scan that stops at the first key not expired)
IDEMPOTENCY_KEYS = text(
    "WITH due AS (SELECT user_id, key FROM idempotency_keys WHERE expires_at <= now()"
    " ORDER BY expires_at LIMIT :batch)"
    " DELETE FROM idempotency_keys k USING due WHERE k.user_id = due.user_id AND k.key = due.key"
    " AND k.expires_at <= now()"  # the row deleted is expired too, whatever changed since the read
)
#: the tokens that expired first, up to a batch, of those expired longer than the retention ago
REFRESH_TOKENS = text(
    "WITH due AS (SELECT id FROM refresh_tokens WHERE expires_at < now() - make_interval(secs => :keep_s)"
    " ORDER BY expires_at LIMIT :batch)"
    " DELETE FROM refresh_tokens t USING due WHERE t.id = due.id"
)
_last = 0.0


async def prune_when_due(res: Resources) -> int:
    """Every prune, at most every ``EVERY_S``; how many rows they deleted."""
    global _last  # noqa: PLW0603 - one relay loop per process
    if time.monotonic() - _last < EVERY_S:
        return 0
    _last = time.monotonic()
    deleted = 0
    for table, prune in (
        ("outbox", prune_outbox),
        ("idempotency_keys", prune_idempotency_keys),
        ("refresh_tokens", prune_refresh_tokens),
    ):
        try:
            deleted += await prune(res)
        except Exception as exc:  # housekeeping: a failure must not hold up the pass that publishes
            log.warning("retention.prune_failed", table=table, error=type(exc).__name__)
    return deleted


async def prune_outbox(res: Resources, keep_s: float | None = None, batch: int = BATCH) -> int:
    """Delete those of the ``batch`` oldest sent rows sent more than ``keep_s`` ago (by default the
    setting's); how many."""
    keep = res.settings.outbox_retention_s if keep_s is None else keep_s
    return await _prune(res, "outbox", OUTBOX, {"batch": batch, "keep_s": keep})


async def prune_idempotency_keys(res: Resources, batch: int = BATCH) -> int:
    """Delete up to ``batch`` expired idempotency keys, those that expired first; how many."""
    return await _prune(res, "idempotency_keys", IDEMPOTENCY_KEYS, {"batch": batch})


async def prune_refresh_tokens(res: Resources, keep_s: float | None = None, batch: int = BATCH) -> int:
    """Delete up to ``batch`` refresh tokens expired more than ``keep_s`` ago (by default the setting's), the
    first expired first; how many."""
    keep = res.settings.refresh_retention_s if keep_s is None else keep_s
    return await _prune(res, "refresh_tokens", REFRESH_TOKENS, {"batch": batch, "keep_s": keep})


async def _prune(res: Resources, table: str, statement: TextClause, params: dict[str, Any]) -> int:
    with tracer.start_as_current_span("retention.prune") as span:
        span.set_attribute("jatra.retention.table", table)
        async with res.db()() as session:
            result = await session.execute(statement, params)
            deleted = int(getattr(result, "rowcount", 0))
            await session.commit()
        span.set_attribute("jatra.retention.pruned", deleted)
    if deleted:
        PRUNED.labels(table).inc(deleted)
        log.info("retention.pruned", table=table, rows=deleted)
    return deleted
