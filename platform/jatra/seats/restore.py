"""The reaper's restore of journeys' sold legs into a Redis that lost them (jatra.inventory.resync).

Holds on a journey are refused until its synced marker exists; this writes the marker, with every sale
Postgres records of the journey, in one script per journey. Run by the reaper at each pass
(:func:`jatra.seats.reaper.reap`), and once by the stack's tests before they take holds.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Iterable

import structlog
from opentelemetry import trace

from jatra.infra.resources import Resources, open_resources
from jatra.inventory import resync
from jatra.inventory.holds import HoldStore
from jatra.inventory.segments import Segment
from jatra.seats import repository
from jatra.settings import Settings
from jatra.telemetry import catalogue as c
from jatra.telemetry.metrics import counter

log = structlog.get_logger()
tracer = trace.get_tracer(__name__)
RESYNCED = counter(c.JOURNEYS_RESYNCED)

#: the id of the last sale Redis was told of by the reaper's replay (jatra.seats.reaper.sync_sold_legs)
SALES_CURSOR = "jatra:seats:sales-cursor"
#: how often every sellable journey's marker is checked, one EXISTS each (~170 ms of the reaper's CPU for
#: 20,000 journeys), for journeys materialised without one. A journey that lost its marker needs no sweep:
#: the first hold refused on it asks for it.
SWEEP_S = 3600.0
#: sales and cancellations this close before a restore began are gone over again after it: a transaction's
#: rows carry its start time, and one that began before the restore's read may commit after it
SETTLING = dt.timedelta(seconds=60)
#: when this process last swept every sellable journey (None: not yet)
_last_sweep: float | None = None
#: the Redis server this process's last pass met (its run_id) and the database time of that pass
_seen: tuple[str, dt.datetime] | None = None


async def resell_cancelled(store: HoldStore, booking: repository.Unsold) -> None:
    """Put a cancelled booking's legs back on sale in Redis, keeping the legs Postgres sells of its seats
    now (HoldStore.resell); nothing once the train has left."""
    if not booking.ahead:
        return
    sold = dict.fromkeys(booking.seat_ids, 0)
    for seat, start, end in booking.sold:
        sold[seat] |= Segment(start, end).mask
    await store.resell(booking.journey_id, Segment(booking.from_seq, booking.to_seq).mask, sold)


async def restore_now(settings: Settings) -> int:
    """One sweep, as the reaper's first pass makes: `jatra seed` runs it, so that the journeys it adds take
    holds at once instead of after the reaper's next sweep (an hour)."""
    async with open_resources(settings, "seed", frozenset({"db", "redis"})) as res:
        return await resync_journeys(res, HoldStore(res.cache()), sweep=True)


async def replay_after_restart(res: Resources, store: HoldStore) -> int:
    """Mark again the sales recorded since a minute before the last pass that met the previous Redis
    server, when another one answers now (its run_id changed: a restart, a failover).

    A Redis that comes back with its data, the markers among it, may still have lost its last writes (AOF
    fsynced every second, a replica promoted before it had the primary's last second). The markers then
    say the journeys are known while the sold legs of those last sales are gone, and a hold could take
    such a seat. Marking a sale sold is idempotent (OR), so going over a minute more than needed costs
    nothing but the pass. A restart while this process was not running is not seen; the cursor's replay
    and the markers cover the rest."""
    global _seen  # noqa: PLW0603 - one reaper loop per process
    run_id = str((await res.cache().info("server"))["run_id"])
    async with res.db()() as session:
        now = await repository.server_now(session)
        previous = _seen
        if previous is None or previous[0] == run_id:
            _seen = (run_id, now)
            return 0
        with tracer.start_as_current_span("seats.reaper.replay_after_restart") as span:
            since = previous[1] - SETTLING
            rows = await repository.sold_since(session, since)
            journeys = await mark_sales(store, rows)
            span.set_attribute("jatra.resync.sales", len(rows))
    # only now: a pass that fails before this (a Redis still loading refuses writes) tries again next time
    _seen = (run_id, now)
    RESYNCED.labels("restart").inc(len(journeys))
    log.warning(
        "seats.sales_replayed_after_restart", sales=len(rows), journeys=len(journeys), since=since.isoformat()
    )
    return len(rows)


async def mark_sales(store: HoldStore, rows: Iterable[tuple[int, int, int, int]]) -> set[int]:
    """Mark sold in Redis the legs of sales ``(journey, seat, first leg, end leg)``, one script per journey
    and leg mask (an OR: idempotent); returns the journeys."""
    grouped: dict[tuple[int, int], list[int]] = {}
    for journey, seat, start, end in rows:
        grouped.setdefault((journey, Segment(start, end).mask), []).append(seat)
    for (journey, mask), seats in grouped.items():
        await store.mark_sold(journey, seats, mask)
    return {journey for journey, _ in grouped}


def _by_journey(rows: list[tuple[int, int, int, int]]) -> dict[int, dict[int, int]]:
    """Sold legs as journey -> seat -> leg mask."""
    sold: dict[int, dict[int, int]] = {}
    for journey, seat, start, end in rows:
        seats = sold.setdefault(journey, {})
        seats[seat] = seats.get(seat, 0) | Segment(start, end).mask
    return sold


def marker_expiry_ms(departs: dt.datetime, longest: dt.timedelta) -> int:
    """A marker outlives the last departure of its journey by a day, then expires with the journey."""
    return int((departs + longest + dt.timedelta(days=1)).timestamp() * 1000)


async def resync_journeys(res: Resources, store: HoldStore, *, sweep: bool = False) -> int:
    """Give every journey that lacks its synced marker its sold legs from Postgres, and the marker: the
    journeys the API asked about at each pass, every sellable one in a sweep (the first pass, hourly, and
    whenever the sales cursor is gone, which says Redis lost its data). Then bookings of those journeys
    cancelled since just before the read are put back on sale again: a cancellation that freed its seats
    between the read and the write (by a process from before the marker, which does not wait for it)
    would otherwise be sold again by the write.

    When a sweep finds every sellable journey without its marker and the cursor gone, Redis lost all it had:
    the cursor then starts at the last sale recorded a minute before the restore began, instead of
    replaying the whole history (every sale of a sellable journey is in what the restore wrote; the replay
    goes over the last minute again for a sale committed meanwhile whose own mark failed). ``sweep``: one
    now, whatever this process's reaper loop last did (`jatra seed`)."""
    global _last_sweep  # noqa: PLW0603 - one reaper loop per process
    redis = res.cache()
    asked = await resync.asked(store)
    clock = time.monotonic()
    no_cursor = not await redis.exists(SALES_CURSOR)
    due = _last_sweep is None or clock - _last_sweep >= SWEEP_S
    sweep = sweep or due or no_cursor
    if not sweep and not asked:
        return 0
    with tracer.start_as_current_span("seats.reaper.resync") as span:
        async with res.db()() as session:
            now = await repository.server_now(session)
            longest = await repository.longest_run(session)
            # read before the restore reads any sale; used only if it finds Redis lost everything
            start_from = await repository.last_sale_before(session, now - SETTLING) if no_cursor else 0
            journeys = await repository.sellable_journeys(session, now - longest, None if sweep else asked)
        departs = dict(journeys)
        missing = await resync.unsynced(store, list(departs))
        sales = repaired = 0
        for first in range(0, len(missing), resync.BATCH):
            chunk = missing[first : first + resync.BATCH]
            async with res.db()() as session:
                rows = await repository.sold_legs_of(session, chunk)
            sold = _by_journey(rows)
            for journey, legs in sold.items():
                await store.resync(journey, legs, marker_expiry_ms(departs[journey], longest))
            expiring = [(j, marker_expiry_ms(departs[j], longest)) for j in chunk if j not in sold]
            await resync.mark_synced(store, expiring)
            async with res.db()() as session:
                cancelled = await repository.cancelled_since(session, chunk, now - SETTLING)
            for booking in cancelled:
                await resell_cancelled(store, booking)
            if cancelled:  # a resale marked between that read and the resells stays sold
                touched = sorted({b.journey_id for b in cancelled})
                async with res.db()() as session:
                    again = await repository.sold_legs_of(session, touched)
                for journey, legs in _by_journey(again).items():
                    await store.resync(journey, legs, marker_expiry_ms(departs[journey], longest))
            sales += len(rows)
            repaired += len(cancelled)
        lost_all = sweep and no_cursor and len(missing) == len(departs)
        if lost_all:
            await redis.set(SALES_CURSOR, start_from, nx=True)
        if sweep:
            _last_sweep = clock
        span.set_attributes(
            {
                "jatra.resync.sweep": sweep,
                "jatra.resync.asked": len(asked),
                "jatra.resync.journeys": len(missing),
                "jatra.resync.lost_all": lost_all,
            }
        )
    if missing:
        RESYNCED.labels("sweep" if sweep else "asked").inc(len(missing))
        log.info(
            "seats.journeys_resynced",
            journeys=len(missing),
            sales=sales,
            cancellations_repaired=repaired,
            asked=len(asked),
            sweep=sweep,
            lost_all=lost_all,
            first_departure=departs[missing[0]].isoformat(),
        )
    return len(missing)
