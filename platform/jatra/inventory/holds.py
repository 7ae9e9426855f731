"""Seat holds in Redis: atomic multi-seat holds per segment, by Lua, single-slot per journey.

Every key of one journey carries the hash tag ``{j<journey id>}``, so each script runs on one Redis
Cluster slot. Time comes from the Redis server clock inside the scripts, so expiry is consistent
whatever the callers' clocks say. Expired holds free their seats by TTL: the hold's own key expires, and
its per-seat entries carry the same expiry and count as free from then on (pruned when next touched).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from opentelemetry import trace

from jatra.infra.scripts import AnyRedis, LuaScript
from jatra.telemetry import catalogue as c
from jatra.telemetry.metrics import histogram, trace_exemplar

tracer = trace.get_tracer(__name__)
SCRIPT_DURATION = histogram(c.HOLD_SCRIPT_DURATION)
#: holds asked about in one round trip by :meth:`HoldStore.live`
LIVE_BATCH = 500
#: what says a hold is live: it has an owner and no end (an ended hold leaves a short tombstone)
_LIVE_FIELDS = ("user", "ended")


def _is_live(reply: list[Any]) -> bool:
    user, ended = reply
    return user is not None and ended is None


def _is_gone(reply: list[Any]) -> bool:
    """Neither live nor ended: the key vanished (a Redis restart, an eviction), not a tombstone."""
    user, ended = reply
    return user is None and ended is None


_HERE = Path(__file__).parent / "lua"
_COMMON = (_HERE / "common.lua").read_text()
HOLD, RELEASE, EXTEND, SOLD, UNSOLD, RESOLD, SYNCED = (
    LuaScript(_COMMON + (_HERE / f"{name}.lua").read_text(), name)
    for name in ("hold", "release", "extend", "sold", "unsold", "resold", "synced")
)


@dataclass(frozen=True, slots=True)
class Acquired:
    expires_ms: int
    now_ms: int


@dataclass(frozen=True, slots=True)
class Conflicted:
    seats: list[int]


@dataclass(frozen=True, slots=True)
class Limited:
    what: str  # "holds" or "seats"
    current: int


@dataclass(frozen=True, slots=True)
class Resyncing:
    """The journey has no synced marker: this Redis may not know all its sales (jatra.inventory.resync)."""


@dataclass(frozen=True, slots=True)
class Ended:
    seats: list[int]
    mask: int
    seat_class: str
    now_ms: int


@dataclass(frozen=True, slots=True)
class Extended:
    expires_ms: int
    seat_class: str


@dataclass(frozen=True, slots=True)
class Refused:
    reason: str  # "missing", "not_owner", "at_limit", "ended_release", "ended_sell"
    expires_ms: int | None = None


def _s(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


@dataclass(frozen=True, slots=True)
class Occupancy:
    """A journey's seats as Redis has them, for a seat map."""

    #: live hold masks with their expiry (ms), per seat; live by Redis's clock (TIME, in the same round trip)
    held: dict[int, list[tuple[int, int]]]
    #: sold leg mask per seat
    sold: dict[int, int]
    #: the journey's synced marker is there, so ``sold`` may be trusted as holds trust it (a restart that
    #: lost the last writes is the reaper's replay's to mend); without it Redis lost the journey's data,
    #: or never had it, and ``sold`` may lack sales Postgres has
    synced: bool


class HoldStore:
    def __init__(self, redis: AnyRedis, prefix: str = "jatra:seats") -> None:
        self.redis = redis
        self.prefix = prefix

    def _base(self, journey_id: int) -> str:
        return f"{self.prefix}:{{j{journey_id}}}"

    def holds_key(self, journey_id: int) -> str:
        return self._base(journey_id) + ":holds"

    def sold_key(self, journey_id: int) -> str:
        return self._base(journey_id) + ":sold"

    def synced_key(self, journey_id: int) -> str:
        """Set once Redis knows every sale Postgres has of the journey; holds need it (hold.lua)."""
        return self._base(journey_id) + ":synced"

    def hold_key(self, journey_id: int, hold_id: uuid.UUID) -> str:
        return f"{self._base(journey_id)}:hold:{hold_id.hex}"

    def account_key(self, journey_id: int, user_id: uuid.UUID) -> str:
        return f"{self._base(journey_id)}:acct:{user_id.hex}"

    async def _run(self, script: LuaScript, keys: list[str], args: list[Any], seats: int) -> list[str]:
        with tracer.start_as_current_span(f"seats.hold_script.{script.name}") as span:
            span.set_attributes(
                {"jatra.hold.seats": seats, "db.system": "redis", "jatra.script": script.name}
            )
            t0 = time.perf_counter()
            try:
                raw = await script(self.redis, keys, args)
            finally:
                SCRIPT_DURATION.labels(script.name).observe(time.perf_counter() - t0, trace_exemplar())
            result = [_s(x) for x in raw]
            span.set_attribute("jatra.hold.outcome", result[0])
            return result

    async def hold(
        self,
        journey_id: int,
        hold_id: uuid.UUID,
        user_id: uuid.UUID,
        seat_ids: list[int],
        mask: int,
        *,
        ttl_s: float,
        max_seats: int,
        max_live: int,
        seat_class: str,
    ) -> Acquired | Conflicted | Limited | Resyncing:
        keys = [
            self.holds_key(journey_id),
            self.sold_key(journey_id),
            self.hold_key(journey_id, hold_id),
            self.account_key(journey_id, user_id),
            self.synced_key(journey_id),
        ]
        args = [hold_id.hex, user_id.hex, mask, int(ttl_s * 1000), max_seats, max_live, seat_class, *seat_ids]
        result = await self._run(HOLD, keys, args, len(seat_ids))
        match result[0]:
            case "ok":
                if result[3] != hold_id.hex:
                    raise RuntimeError(f"hold script answered for hold {result[3]}, not {hold_id.hex}")
                return Acquired(int(result[1]), int(result[2]))
            case "conflict":
                return Conflicted([int(s) for s in result[1:]])
            case "resyncing":
                return Resyncing()
            case _:
                return Limited(result[0].removeprefix("limit_"), int(result[1]))

    async def _end(
        self,
        journey_id: int,
        hold_id: uuid.UUID,
        user_id: uuid.UUID | None,
        mode: str,
        owner: uuid.UUID | None = None,
    ) -> Ended | Refused:
        # The account key needs the owner: the caller's, the one the system knows (the payment worker has
        # the booking's account), or else read from the hold first (the reaper), a round trip more.
        owner = user_id or owner or await self.owner(journey_id, hold_id)
        if owner is None:
            return Refused("missing")
        keys = [
            self.holds_key(journey_id),
            self.sold_key(journey_id),
            self.hold_key(journey_id, hold_id),
            self.account_key(journey_id, owner),
        ]
        result = await self._run(RELEASE, keys, [hold_id.hex, user_id.hex if user_id else "", mode], 0)
        if result[-1] != hold_id.hex:
            raise RuntimeError(f"release script answered for hold {result[-1]}, not {hold_id.hex}")
        if result[0] != "ok":
            return Refused(result[0])
        return Ended([int(s) for s in result[1].split(",")], int(result[2]), result[3], int(result[4]))

    async def release(
        self,
        journey_id: int,
        hold_id: uuid.UUID,
        user_id: uuid.UUID | None,
        owner: uuid.UUID | None = None,
    ) -> Ended | Refused:
        """Free the seats of a hold. ``user_id`` None means the system (no owner check); the system may pass
        the ``owner`` it knows (the booking's account), which saves reading it from the hold."""
        return await self._end(journey_id, hold_id, user_id, "release", owner)

    async def sell(
        self, journey_id: int, hold_id: uuid.UUID, owner: uuid.UUID | None = None
    ) -> Ended | Refused:
        """Turn a live hold into sold legs (after Postgres recorded the sale). ``owner``, the account that
        holds it, if known, saves reading it from the hold."""
        return await self._end(journey_id, hold_id, None, "sell", owner)

    async def extend(
        self, journey_id: int, hold_id: uuid.UUID, user_id: uuid.UUID, ttl_s: float, max_total_s: float
    ) -> Extended | Refused:
        keys = [
            self.holds_key(journey_id),
            self.hold_key(journey_id, hold_id),
            self.account_key(journey_id, user_id),
        ]
        args = [hold_id.hex, user_id.hex, int(ttl_s * 1000), int(max_total_s * 1000)]
        result = await self._run(EXTEND, keys, args, 0)
        if result[0] == "ok":
            return Extended(int(result[1]), result[2])
        return Refused(result[0], int(result[1]) if len(result) > 1 else None)

    async def mark_sold(self, journey_id: int, seat_ids: list[int], mask: int) -> None:
        """Record sold legs of seats whose hold is gone (Postgres already holds the sale)."""
        await self._run(SOLD, [self.sold_key(journey_id)], [mask, *seat_ids], len(seat_ids))

    async def unmark_sold(self, journey_id: int, seat_ids: list[int], mask: int) -> bool:
        """Put legs back on sale after a cancellation (Postgres already dropped the sale). False, and
        nothing changed, while the journey has no synced marker (unsold.lua): the reaper's repair does it."""
        keys = [self.sold_key(journey_id), self.synced_key(journey_id)]
        result = await self._run(UNSOLD, keys, [mask, *seat_ids], len(seat_ids))
        return result[0] == "ok"

    async def resell(self, journey_id: int, freed: int, sold: Mapping[int, int]) -> None:
        """Put a cancelled booking's legs (``freed``, a mask) back on sale for its seats, keeping the legs
        Postgres sells of each now (``sold``: seat -> mask), in one script."""
        pairs = [x for seat, mask in sold.items() for x in (seat, mask)]
        await self._run(RESOLD, [self.sold_key(journey_id)], [freed, *pairs], len(sold))

    async def resync(self, journey_id: int, sold: Mapping[int, int], expires_ms: int) -> None:
        """Write the journey's sold legs from Postgres (``sold``: seat -> leg mask, all of them) and mark it
        synced, in one script: holds on it are refused until then (jatra.inventory.resync)."""
        pairs = [x for seat, mask in sold.items() for x in (seat, mask)]
        keys = [self.sold_key(journey_id), self.synced_key(journey_id)]
        await self._run(SYNCED, keys, [expires_ms, *pairs], len(sold))

    async def owner(self, journey_id: int, hold_id: uuid.UUID) -> uuid.UUID | None:
        raw = await self.redis.hget(self.hold_key(journey_id, hold_id), "user")
        return uuid.UUID(_s(raw)) if raw else None

    async def exists(self, journey_id: int, hold_id: uuid.UUID) -> bool:
        """Whether the hold is live (not expired, not ended; an ended hold leaves a short tombstone)."""
        return _is_live(await self.redis.hmget(self.hold_key(journey_id, hold_id), _LIVE_FIELDS))

    async def gone(self, holds: Sequence[tuple[int, uuid.UUID]]) -> list[bool]:
        """For each of many ``(journey_id, hold_id)``: whether its key vanished (neither live nor ended: a
        hold ended here leaves a tombstone, and the request that ended it updates Postgres next). In
        pipelined round trips of up to ``LIVE_BATCH`` (the reaper asks about every active hold on each pass:
        one round trip each was about three of the seventeen Redis commands a booking made in a rush)."""
        found: list[bool] = []
        for first in range(0, len(holds), LIVE_BATCH):
            async with self.redis.pipeline(transaction=False) as pipe:
                for journey_id, hold_id in holds[first : first + LIVE_BATCH]:
                    pipe.hmget(self.hold_key(journey_id, hold_id), _LIVE_FIELDS)
                found.extend(_is_gone(reply) for reply in await pipe.execute())
        return found

    async def occupancy(self, journey_id: int) -> Occupancy:
        """What a seat map shows of the journey, in one round trip. The marker is asked first: the
        restore writes it with the sold legs in one script, so legs read after a marker are at least as
        new as its write (asked after them, a restore run in between would vouch for legs read before
        it)."""
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.exists(self.synced_key(journey_id))
            pipe.hgetall(self.holds_key(journey_id))
            pipe.hgetall(self.sold_key(journey_id))
            pipe.time()
            synced, holds_raw, sold_raw, (seconds, micros) = await pipe.execute()
        now = int(seconds) * 1000 + int(micros) // 1000
        held: dict[int, list[tuple[int, int]]] = {}
        for seat, entries in holds_raw.items():
            for entry in _s(entries).split(";"):
                _, mask, expires = entry.split(":")
                if int(expires) > now:
                    held.setdefault(int(seat), []).append((int(mask), int(expires)))
        sold = {int(seat): int(mask) for seat, mask in sold_raw.items()}
        return Occupancy(held, sold, bool(synced))
