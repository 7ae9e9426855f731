"""Rendered e-tickets: at most one render per booking, however many processes ask at once."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from prometheus_client import REGISTRY
from redis.asyncio import Redis
from redis.crc import key_slot

from jatra.tickets import cache
from tests.fixtures.app import Recording
from tests.fixtures.tickets import TICKET_VIEW

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("stack")]

KEY = Ed25519PrivateKey.generate()
OWNER = str(uuid.uuid4())


def pdfs(by: str, outcome: str) -> float:
    return REGISTRY.get_sample_value("jatra_tickets_pdf_total", {"by": by, "outcome": outcome}) or 0.0


async def test_concurrent_askers_share_one_render(redis: Redis, monkeypatch: pytest.MonkeyPatch) -> None:
    booking = str(uuid.uuid4())
    loads = 0
    refused: set[str] = set()  # the askers (by their lock token) told "another asker holds the lock"
    all_refused = asyncio.Event()
    claim = cache.CLAIM

    async def counted_claim(client: Redis, keys: list[str], args: list[Any]) -> Any:
        answer = await claim(client, keys, args)
        if answer == 0:
            refused.add(args[0])  # a waiter asks again every few ms: counted once
        if len(refused) == 4:
            all_refused.set()
        return answer

    monkeypatch.setattr(cache, "CLAIM", counted_claim)

    async def load_view() -> dict[str, Any]:
        nonlocal loads
        loads += 1
        # the render waits until the four others have found the lock held: on a busy machine an asker whose
        # new connection is slow would otherwise first ask after the store, and be served from the cache
        async with asyncio.timeout(10):
            await all_refused.wait()
        return {**TICKET_VIEW, "booking_id": booking}

    before = {o: pdfs("api", o) for o in ("rendered", "waited", "cached")}
    results = await asyncio.gather(
        *(cache.get_or_render(redis, KEY, booking, OWNER, load_view, "api") for _ in range(5))
    )
    assert loads == 1, "the ticket view was read (and the PDF rendered) more than once"
    assert all(r == results[0] and r.startswith(b"%PDF-") for r in results)
    assert pdfs("api", "rendered") == before["rendered"] + 1
    assert pdfs("api", "waited") == before["waited"] + 4
    assert await redis.exists(cache.lock_key(booking)) == 0

    again = await cache.get_or_render(redis, KEY, booking, OWNER, load_view, "api")
    assert again == results[0] and loads == 1 and pdfs("api", "cached") == before["cached"] + 1


async def test_while_a_live_renderer_holds_the_lock_nobody_else_renders(redis: Redis) -> None:
    booking = str(uuid.uuid4())
    lock = redis.lock(cache.lock_key(booking), timeout=30)  # another process, rendering
    assert await lock.acquire(blocking=False)
    loads = 0

    async def load_view() -> dict[str, Any]:
        nonlocal loads
        loads += 1
        return {**TICKET_VIEW, "booking_id": booking}

    before = pdfs("notifications", "waited")
    asker = asyncio.create_task(cache.get_or_render(redis, KEY, booking, OWNER, load_view, "notifications"))
    for _ in range(20):  # it keeps waiting however long the holder takes
        await asyncio.sleep(0.02)
        assert not asker.done() and loads == 0
    await cache.store(redis, booking, OWNER, b"%PDF-from-the-holder")  # the holder's result
    await lock.release()
    assert await asker == b"%PDF-from-the-holder" and loads == 0
    assert pdfs("notifications", "waited") == before + 1


async def test_a_dead_renderer_only_delays_the_others(redis: Redis) -> None:
    booking = str(uuid.uuid4())
    # a renderer that took the lock and died: nobody deletes it, it lapses with its TTL (1 s here; the
    # waiter's own lock lives RENDER_LOCK_S, long enough to be seen while it loads, however busy the machine)
    await redis.set(cache.lock_key(booking), "dead-renderer", ex=1)
    lock_when_loaded: list[bytes | None] = []

    async def load_view() -> dict[str, Any]:
        lock_when_loaded.append(await redis.get(cache.lock_key(booking)))
        return {**TICKET_VIEW, "booking_id": booking}

    pdf = await cache.get_or_render(redis, KEY, booking, OWNER, load_view, "notifications")
    assert pdf.startswith(b"%PDF-") and await redis.hget(cache.entry_key(booking), "pdf") == pdf
    # it rendered once, and only under a lock of its own, after the dead renderer's had lapsed
    assert len(lock_when_loaded) == 1 and lock_when_loaded[0] not in {None, b"dead-renderer"}


async def test_a_ticket_rendered_for_one_account_is_not_served_to_another(redis: Redis) -> None:
    booking = str(uuid.uuid4())
    await cache.store(redis, booking, OWNER, b"%PDF-theirs")

    async def load_view() -> dict[str, Any]:
        raise AssertionError("a stored ticket is never rendered again")

    before = pdfs("api", "cached")
    assert await cache.get_or_render(redis, KEY, booking, OWNER, load_view, "api") == b"%PDF-theirs"
    with pytest.raises(cache.NotYours):
        await cache.get_or_render(redis, KEY, booking, str(uuid.uuid4()), load_view, "api")
    assert pdfs("api", "cached") == before + 1  # only the owner's read was served
    assert 0 < await redis.ttl(cache.entry_key(booking)) <= cache.TTL_S


async def test_a_download_is_one_round_trip_and_a_render_two(recording: Recording) -> None:
    """The claim answers the stored entry or takes the render lock in one script; the store lets go of
    the lock in the same step (it took five commands before: the entry's read, the lock's SET, the store,
    the lock's GET and its release)."""
    booking = str(uuid.uuid4())

    async def load_view() -> dict[str, Any]:
        return {**TICKET_VIEW, "booking_id": booking}

    # scripts loaded first: a Redis that lost them answers NOSCRIPT once and the script is sent with EVAL
    await cache.get_or_render(recording, KEY, str(uuid.uuid4()), OWNER, load_view, "api")
    recording.sent.clear()
    pdf = await cache.get_or_render(recording, KEY, booking, OWNER, load_view, "api")
    assert recording.sent == ["EVALSHA", "EVALSHA"], recording.sent
    assert not await recording.exists(cache.lock_key(booking))
    recording.sent.clear()
    assert await cache.get_or_render(recording, KEY, booking, OWNER, load_view, "api") == pdf
    assert recording.sent == ["EVALSHA"], recording.sent


async def test_a_refused_render_lets_go_of_the_lock_at_once(redis: Redis) -> None:
    """``load_view`` refuses (not the asker's booking, not confirmed): the lock is let go, so the next
    asker renders at once instead of waiting out the lock's TTL."""
    booking = str(uuid.uuid4())

    async def refused() -> dict[str, Any]:
        assert await redis.exists(cache.lock_key(booking))  # taken by the claim
        raise LookupError("not yours")

    with pytest.raises(LookupError):
        await cache.get_or_render(redis, KEY, booking, str(uuid.uuid4()), refused, "api")
    assert not await redis.exists(cache.lock_key(booking))

    async def load_view() -> dict[str, Any]:
        return {**TICKET_VIEW, "booking_id": booking}

    before = pdfs("api", "waited")
    assert (await cache.get_or_render(redis, KEY, booking, OWNER, load_view, "api")).startswith(b"%PDF-")
    assert pdfs("api", "waited") == before


async def test_a_void_ticket_is_never_stored_again(redis: Redis) -> None:
    """Cancelling marks the ticket void: a render that was under way returns its PDF to its own asker
    (who read the booking as confirmed) but stores nothing, so no later download is served from Redis."""
    booking = str(uuid.uuid4())
    await cache.store(redis, booking, OWNER, b"%PDF-before")
    await cache.void(redis, booking)
    assert not await redis.exists(cache.entry_key(booking))
    assert await cache.store(redis, booking, OWNER, b"%PDF-late") is False

    async def load_view() -> dict[str, Any]:
        return {**TICKET_VIEW, "booking_id": booking}

    pdf = await cache.get_or_render(redis, KEY, booking, OWNER, load_view, "api")
    assert pdf.startswith(b"%PDF-") and not await redis.exists(cache.entry_key(booking))
    assert cache.TTL_S + cache.RENDER_LOCK_S < await redis.ttl(cache.void_key(booking)) <= cache.VOID_TTL_S


async def test_a_render_cancelled_while_it_reads_lets_go_of_the_lock(redis: Redis) -> None:
    booking = str(uuid.uuid4())
    reading = asyncio.Event()

    async def stalled() -> dict[str, Any]:
        reading.set()
        await asyncio.sleep(30)  # a read that never comes back before the asker is cancelled
        raise AssertionError("cancelled before this")

    asker = asyncio.create_task(cache.get_or_render(redis, KEY, booking, OWNER, stalled, "api"))
    await reading.wait()
    assert await redis.exists(cache.lock_key(booking))
    asker.cancel()
    with pytest.raises(asyncio.CancelledError):
        await asker
    assert not await redis.exists(cache.lock_key(booking))


def test_a_tickets_keys_share_one_cluster_slot() -> None:
    """Each script names the entry, the void mark and the lock together: one slot in a Redis Cluster."""
    booking = str(uuid.uuid4())
    slots = {
        key_slot(k.encode())
        for k in (cache.entry_key(booking), cache.void_key(booking), cache.lock_key(booking))
    }
    assert len(slots) == 1
