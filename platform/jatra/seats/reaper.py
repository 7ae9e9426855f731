"""`jatra worker reaper`: reconcile what Postgres records about holds with what Redis holds.

Redis frees expired seats by itself (TTL); nothing here is on the hot path. The reaper makes Redis's sold
legs Postgres's (cancelled sales freed, new sales marked), marks holds that
ran out as EXPIRED (counting them), marks ACTIVE holds whose Redis key vanished (a Redis restart) as lost
(not those ended in Redis a moment before their request ends them in Postgres: a tombstone says so), and
publishes the live-hold gauges.
"""

from __future__ import annotations

from collections import Counter

import structlog
from opentelemetry import trace

from jatra.infra.resources import Resources
from jatra.inventory.holds import HoldStore
from jatra.seats import repository
from jatra.seats.restore import (
    SALES_CURSOR,
    mark_sales,
    replay_after_restart,
    resell_cancelled,
    resync_journeys,
)
from jatra.telemetry import catalogue as c
from jatra.telemetry.metrics import counter, gauge

log = structlog.get_logger()
tracer = trace.get_tracer(__name__)
ENDED = counter(c.HOLD_ENDED)
HOLDS_LIVE = gauge(c.HOLDS_LIVE)
SEATS_HELD = gauge(c.SEATS_HELD)
_seen_classes: set[str] = set()

SYNC_BATCH = 5000
#: how long a flagged cancellation is left to its own request, which clears the flag once Redis has its seats
UNSELL_GRACE_S = 10.0


async def sync_unsold_legs(res: Resources, store: HoldStore, batch: int = SYNC_BATCH) -> int:
    """Put back on sale the seats of cancellations whose request could not: a cancellation commits flagged
    (``unsell_pending``) and clears the flag once Redis has its seats back; if Redis failed just then, they
    stayed sold there (no hold could take them). Each seat keeps any legs Postgres has sold again since.
    Only flagged ones: a repair races a resale confirmed between its read and its script (the resale's
    mark could be cleared, and :func:`sync_sold_legs`, which runs next, restores it unless its sale id is
    below the cursor), so it is kept to the failures."""
    total = 0
    while True:
        async with res.db()() as session:
            found = await repository.unsell_pending(session, UNSELL_GRACE_S, batch)
            for booking in found:
                await resell_cancelled(store, booking)
            if found:
                await repository.unsell_finished(session, [b.booking_id for b in found])
                log.info("seats.unsold_repaired", bookings=len(found))
        total += len(found)
        if len(found) < batch:
            return total


async def sync_sold_legs(res: Resources, store: HoldStore, batch: int = SYNC_BATCH) -> int:
    """Make Redis know every sale Postgres has: OR the sold legs in, from a cursor of sale ids.

    Postgres is the truth of sales; marking legs sold is idempotent. If Redis lost its data, the
    journeys' sales are restored with their markers (jatra.seats.restore), which starts the cursor a
    minute before the restore when everything was lost; with the cursor alone gone, the whole history is
    replayed in one pass (batch after batch). Holds wait for the markers, not for this replay.
    """
    redis = res.cache()
    cursor = int(await redis.get(SALES_CURSOR) or 0)
    total = 0
    while True:
        async with res.db()() as session:
            sales = await repository.sales_after(session, cursor, batch)
        await mark_sales(store, (sale[1:] for sale in sales))
        if sales:
            cursor = sales[-1][0]
            await redis.set(SALES_CURSOR, cursor)
        total += len(sales)
        if len(sales) < batch:
            return total


async def reap(res: Resources) -> int:
    store = HoldStore(res.cache())
    resynced = await replay_after_restart(res, store) + await resync_journeys(res, store)
    await sync_unsold_legs(res, store)
    synced = await sync_sold_legs(res, store)
    async with res.db()() as session:
        now = await repository.server_now(session)
        expired = await repository.expire_overdue(session, now)
        by_class = Counter(h.seat_class for h in expired)
        for hold in expired:
            log.info("hold.expired", hold_id=str(hold.id), journey_id=hold.journey_id, seats=hold.seat_ids)
        active = await repository.active_holds(session, now)
        # gone from Redis, not ended there: a passenger's release ends the hold in Redis first and in
        # Postgres a moment later, and is not a loss (if that request dies between, the hold expires)
        gone = await store.gone([(h.journey_id, h.id) for h in active])
        lost = [h for h, vanished in zip(active, gone, strict=True) if vanished]
        if lost:
            await repository.mark_lost(session, [h.id for h in lost], now)
            for hold in lost:
                log.warning("hold.lost", hold_id=str(hold.id), journey_id=hold.journey_id)
        await session.commit()
        counts = await repository.live_counts(session, now)
    for seat_class, n in by_class.items():
        ENDED.labels("expired", seat_class).inc(n)
    for seat_class, n in Counter(h.seat_class for h in lost).items():
        ENDED.labels("lost", seat_class).inc(n)
    # A class whose last hold just ended must read 0, not vanish or keep its old value.
    _seen_classes.update(counts, by_class, (h.seat_class for h in lost))
    for seat_class in _seen_classes:
        holds, seats = counts.get(seat_class, (0, 0))
        HOLDS_LIVE.labels(seat_class).set(holds)
        SEATS_HELD.labels(seat_class).set(seats)
    return len(expired) + len(lost) + synced + resynced
