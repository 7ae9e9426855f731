"""Sent outbox rows deleted once they are older than ``JATRA_OUTBOX_RETENTION_S`` (3 days by default).

The relay marks a row sent and never reads it again: the broker has the message and consumers dedupe on
its id. Without this the table grew by two rows a booking for ever (452,491 rows on the dev stack at the
eighth stop), and with it Postgres's vacuuming, the backups and the restore drill. The relay, which owns
the table, deletes one batch of ``BATCH`` rows, oldest first, at most every ``EVERY_S``: a short statement
between two of its passes (the booking path waits on the relay), and 24,000 rows a minute, two rows a
booking at 12,000 bookings a minute. The primary key's order is the writing order, so the oldest sent row
is found by the key's index, and a pass with nothing old enough stops there instead of reading the
table. Counted in ``jatra_outbox_pruned_total``, logged as ``outbox.pruned``, in the span ``outbox.prune``.
"""

from __future__ import annotations

import time

import structlog
from opentelemetry import trace
from sqlalchemy import text

from jatra.infra.resources import Resources
from jatra.telemetry import catalogue as c
from jatra.telemetry.metrics import counter

log = structlog.get_logger()
tracer = trace.get_tracer(__name__)
PRUNED = counter(c.OUTBOX_PRUNED)
EVERY_S = 5.0
BATCH = 2000
#: the oldest sent row's age, in seconds (NULL for none): whether anything is due at all
OLDEST = text(
    "SELECT extract(epoch FROM now() - sent_at) FROM outbox WHERE sent_at IS NOT NULL ORDER BY id LIMIT 1"
)
#: one batch, oldest first; a row is deleted only once sent and older than the retention
PRUNE = text(
    "WITH old AS (SELECT id FROM outbox WHERE sent_at < now() - make_interval(secs => :keep_s)"
    " ORDER BY id LIMIT :batch)"
    " DELETE FROM outbox o USING old WHERE o.id = old.id"
)
_last = 0.0


async def prune_when_due(res: Resources) -> int:
    global _last  # noqa: PLW0603 - one relay loop per process
    if time.monotonic() - _last < EVERY_S:
        return 0
    _last = time.monotonic()
    return await prune(res, res.settings.outbox_retention_s)


async def prune(res: Resources, keep_s: float, batch: int = BATCH) -> int:
    """Delete up to ``batch`` sent rows older than ``keep_s``; how many were deleted."""
    deleted = 0
    with tracer.start_as_current_span("outbox.prune") as span:
        async with res.db()() as session:
            oldest = await session.scalar(OLDEST)
            if oldest is not None and float(oldest) > keep_s:
                result = await session.execute(PRUNE, {"keep_s": keep_s, "batch": batch})
                deleted = int(getattr(result, "rowcount", 0))
            await session.commit()
        span.set_attribute("jatra.outbox.pruned", deleted)
    if deleted:
        PRUNED.inc(deleted)
        log.info("outbox.pruned", rows=deleted, retention_s=keep_s)
    return deleted
