"""Which journeys Redis knows the sales of, and giving it those it does not.

Postgres is the truth of sales; Redis's ``sold`` hashes are a copy the hold script checks. A Redis that
lost its data (a restart without persistence, a failed-over shard of a cluster) would let a hold take a
seat Postgres has sold: the sale is refused, and the passenger charged and refunded. So each journey has a
*synced* marker in its own hash slot, set in the same script that writes its sold legs from Postgres, and
the hold script refuses a journey without one (503, retry shortly). The marker goes with the data it
vouches for: whatever loses one loses the other.

The reaper (:func:`jatra.seats.restore.resync_journeys`) sets the markers: for every journey the API asked
about (:func:`ask`, on a refused hold) at each pass, and for every journey still sellable in a sweep.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from jatra.inventory.holds import HoldStore

#: journeys the API found without a marker, for the reaper's next pass (one set, outside the journeys' slots)
ASKED = "jatra:seats:resync-asked"
#: keys asked about in one pipelined round trip
BATCH = 500


async def ask(store: HoldStore, journey_id: int) -> None:
    """Tell the reaper a passenger wants this journey: it is synced at its next pass, not the next sweep."""
    await store.redis.sadd(ASKED, journey_id)


async def asked(store: HoldStore, most: int = 10_000) -> list[int]:
    """Take the journeys asked about since the last call (each is taken once)."""
    taken = await store.redis.spop(ASKED, most)
    return sorted({int(j) for j in taken or ()})


async def unsynced(store: HoldStore, journeys: Sequence[int]) -> list[int]:
    """Those of ``journeys`` without a synced marker, in the order given."""
    missing: list[int] = []
    for first in range(0, len(journeys), BATCH):
        chunk = journeys[first : first + BATCH]
        async with store.redis.pipeline(transaction=False) as pipe:
            for journey in chunk:
                pipe.exists(store.synced_key(journey))
            found = await pipe.execute()
        missing.extend(j for j, there in zip(chunk, found, strict=True) if not there)
    return missing


async def mark_synced(store: HoldStore, journeys: Iterable[tuple[int, int]]) -> None:
    """Markers for journeys with no sale at all, ``(journey, expiry ms)``: nothing to write but the marker."""
    pending = list(journeys)
    for first in range(0, len(pending), BATCH):
        async with store.redis.pipeline(transaction=False) as pipe:
            for journey, expires_ms in pending[first : first + BATCH]:
                pipe.set(store.synced_key(journey), "1", pxat=expires_ms)
            await pipe.execute()
