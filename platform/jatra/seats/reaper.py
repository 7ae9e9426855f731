"""`jatra worker reaper`: reconcile what Postgres records about holds with what Redis holds.

Redis frees expired seats by itself (TTL); nothing here is on the hot path. The reaper makes Redis's sold
legs Postgres's (cancelled sales freed, new sales marked), marks holds that
ran out as EXPIRED (counting them), marks ACTIVE holds whose Redis key vanished (a Redis restart) as lost
(not those ended in Redis a moment before their request ends them in Postgres: a tombstone says so), and
publishes the live-hold gauges.
"""

from __future__ import annotations

import datetime as dt
import time
from collections import Counter

import structlog
from opentelemetry import trace

from jatra.infra.resources import Resources
from jatra.inventory.holds import HoldStore
from jatra.inventory.segments import Segment
from jatra.seats import repository
from jatra.telemetry import catalogue as c
from jatra.telemetry.metrics import counter, gauge

log = structlog.get_logger()
tracer = trace.get_tracer(__name__)
ENDED = counter(c.HOLD_ENDED)
HOLDS_LIVE = gauge(c.HOLDS_LIVE)
SEATS_HELD = gauge(c.SEATS_HELD)
_seen_classes: set[str] = set()


SALES_CURSOR = "jatra:seats:sales-cursor"
SYNC_BATCH = 5000
#: the last cancellation put back on sale (its updated_at, epoch seconds)
UNSOLD_CURSOR = "jatra:seats:unsold-cursor"
#: how far before that cursor each pass looks again: a cancellation's updated_at is its statement's time,
#: and its commit may land after a pass read past it (putting legs back on sale twice changes nothing)
UNSOLD_OVERLAP_S = 60.0


async def sync_unsold_legs(res: Resources, store: HoldStore, batch: int = SYNC_BATCH) -> int:
    """Make Redis free every leg Postgres freed: the seats of bookings cancelled since the cursor go back on
    sale, less any legs Postgres has sold again since. A cancellation does this itself once committed; when
    Redis failed it then, its seats stayed sold in Redis (no hold could take them) until this pass. Runs
    before :func:`sync_sold_legs`, which marks again any sale committed while this ran."""
    redis = res.cache()
    raw = await redis.get(UNSOLD_CURSOR)
    since = (
        dt.datetime.fromtimestamp(float(raw) - UNSOLD_OVERLAP_S, dt.UTC)
        if raw
        else dt.datetime(2000, 1, 1, tzinfo=dt.UTC)  # the cursor lost: every cancellation still to travel
    )
    started, total = time.time(), 0
    while True:
        async with res.db()() as session:
            found = await repository.cancelled_since(session, since, batch)
        for booking in found:
            freed = Segment(booking.from_seq, booking.to_seq).mask
            sold = dict.fromkeys(booking.seat_ids, 0)
            for seat, start, end in booking.sold:
                sold[seat] |= Segment(start, end).mask
            await store.resell(booking.journey_id, {seat: (freed, mask) for seat, mask in sold.items()})
        total += len(found)
        if found:
            since = found[-1].updated_at
        if len(found) < batch:
            # no further back than a minute before this pass began, so a quiet hour is not read again
            await redis.set(UNSOLD_CURSOR, max(since.timestamp(), started - UNSOLD_OVERLAP_S))
            return total


async def sync_sold_legs(res: Resources, store: HoldStore, batch: int = SYNC_BATCH) -> int:
    """Make Redis know every sale Postgres has: OR the sold legs in, from a cursor of sale ids.

    Postgres is the truth of sales. If Redis lost its `sold` hashes (a restart without persistence), the
    cursor is gone too, and the whole history is replayed, in one pass (batch after batch) so that the
    window in which a sold seat looks free is as short as the replay: marking legs sold is idempotent.
    Until it ends, a hold can take a seat Postgres has sold; the sale's constraint refuses the second
    sale and the charge is refunded (measured once after a Redis restart: 444 such refunds in one rush
    when the replay took 5,000 sales per 15 s pass).
    """
    redis = res.cache()
    cursor = int(await redis.get(SALES_CURSOR) or 0)
    total = 0
    while True:
        async with res.db()() as session:
            sales = await repository.sales_after(session, cursor, batch)
        grouped: dict[tuple[int, int], list[int]] = {}
        for _, journey, seat, start, end in sales:
            grouped.setdefault((journey, Segment(start, end).mask), []).append(seat)
        for (journey, mask), seats in grouped.items():
            await store.mark_sold(journey, seats, mask)
        if sales:
            cursor = sales[-1][0]
            await redis.set(SALES_CURSOR, cursor)
        total += len(sales)
        if len(sales) < batch:
            return total


async def reap(res: Resources) -> int:
    store = HoldStore(res.cache())
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
    return len(expired) + len(lost) + synced
