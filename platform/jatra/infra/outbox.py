"""The transactional outbox: write a message in the caller's transaction; the relay publishes it.

The W3C trace context of the writing transaction is stored with the message and restored when it is
published, so the producer span (`jatra.infra.publish`) is a child of the request that caused it and the
consumer's trace continues from there.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections import Counter
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import aio_pika
import asyncpg
import structlog
from opentelemetry import propagate, trace
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from jatra.db.bookings import OutboxMessage
from jatra.infra import topology
from jatra.infra.pg_listen import Listener
from jatra.infra.publish import Outgoing, Peer, publish_all
from jatra.infra.relay_connection import RelayConnection
from jatra.infra.resources import Resources
from jatra.infra.retention import prune_when_due
from jatra.telemetry import catalogue as c
from jatra.telemetry.metrics import counter, gauge

log = structlog.get_logger()
tracer = trace.get_tracer(__name__)
PUBLISHED = counter(c.OUTBOX_PUBLISHED)
LAG = gauge(c.OUTBOX_LAG)
PENDING = gauge(c.OUTBOX_PENDING)
LISTENING = gauge(c.OUTBOX_LISTENING)
WAKEUPS = counter(c.OUTBOX_WAKEUPS)
#: the channel the outbox table's trigger notifies after each insert (migration 0005)
CHANNEL = "jatra_outbox"
DEAD_LETTERS = gauge(c.DLQ_DEPTH)
BATCH = 200
DLQ_EVERY_S = 5.0
_last_dlq_check = 0.0
#: the backlog and lag gauges are read at most this often (Prometheus scrapes every 15 s); reading them
#: twice a pass, 20 passes a second, was most of an idle relay's work
MEASURE_EVERY_S = 1.0
_last_measured = 0.0
#: when the relay last started a pass after waiting
_last_pass = 0.0


@dataclass(frozen=True, slots=True)
class Draft:
    """An outbox message but its payload, for SQL that writes the row itself (the payload built there)."""

    exchange: str
    routing_key: str
    message_id: uuid.UUID
    #: the W3C trace context of the writing transaction
    headers: dict[str, str]


def draft(exchange: str, routing_key: str) -> Draft:
    headers: dict[str, str] = {}
    propagate.inject(headers)
    return Draft(exchange, routing_key, uuid.uuid4(), headers)


def add(session: AsyncSession, exchange: str, routing_key: str, payload: dict[str, Any]) -> uuid.UUID:
    """Queue a message in the session's transaction. Returns its message id (consumers dedupe on it)."""
    d = draft(exchange, routing_key)
    session.add(
        OutboxMessage(
            exchange=exchange,
            routing_key=routing_key,
            payload=payload,
            headers=d.headers,
            message_id=d.message_id,
        )
    )
    return d.message_id


#: a batch of unsent messages, locked (another relay skips them) and marked sent in the same statement; the
#: mark commits only with the pass's transaction, after the broker confirmed every message of the batch.
#: The batch is chosen once, in a materialized CTE (an ``IN (SELECT ... LIMIT ... SKIP LOCKED)`` run again
#: per row could mark and return more than the limit). jsonb as text: published as stored. Only rows for
#: the exchanges this relay declares ($2): a row for another (written by a newer version during a rolling
#: deploy, say) stays unsent for a relay that knows it, instead of failing every pass and holding up the
#: rest; it shows in the lag and backlog, and ``measure`` logs it.
CLAIM = (
    "WITH batch AS MATERIALIZED ("
    " SELECT id FROM outbox WHERE sent_at IS NULL AND exchange = ANY($2::text[])"
    " ORDER BY id LIMIT $1 FOR UPDATE SKIP LOCKED)"
    " UPDATE outbox o SET sent_at = now() FROM batch WHERE o.id = batch.id"
    " RETURNING o.id, o.exchange, o.routing_key, o.message_id, o.payload::text AS payload,"
    " o.headers::text AS headers"
)
#: the exchanges a claim takes rows for: those the relay declares
DECLARED = sorted(topology.EXCHANGES)
_connections: dict[int, RelayConnection] = {}
#: unsent rows for undeclared exchanges at the last measure (logged when it changes)
_undeclared = 0


async def relay_once(res: Resources) -> int:
    """Claim up to one batch of unsent messages (marked sent, uncommitted), publish them with publisher
    confirms, then commit, in one transaction on the relay's own connection (a crash or a failed publish
    before the commit leaves them unsent and republishes the batch: consumers dedupe on the message id).

    The lag and backlog are measured first (when due), so that they keep growing while the broker is
    down (the publish below fails then, and the worker loop retries)."""
    await _measure_when_due(res)
    await prune_when_due(res)
    channel, peer = await _confirming(res)
    relay = _connections.get(id(res))
    if relay is None:
        relay = _connections[id(res)] = RelayConnection(res.settings, res.name)
    async with relay.transaction() as conn:
        # RETURNING follows no order: published in the order they were written
        rows = sorted(await conn.fetch(CLAIM, BATCH, DECLARED), key=lambda row: row["id"])
        await publish_all(channel, peer, [_outgoing(row) for row in rows])
    for exchange, sent in Counter(row["exchange"] for row in rows).items():
        PUBLISHED.labels(exchange).inc(sent)
    await _count_dead_letters(res)
    return len(rows)


async def wait_for_messages(res: Resources, handled: int) -> None:
    """Between two passes: none after a full batch; else until a commit rings (NOTIFY from the outbox
    table's trigger), or ``outbox_idle_poll_s`` at most, a safety net; and never sooner than
    ``outbox_interval_s`` after the last pass began, so that a busy relay publishes in batches as it did
    when it polled (a ring on a quiet relay is answered at once). Without a LISTEN session (no direct
    Postgres URL, or it is down) the relay polls every ``outbox_interval_s`` as before."""
    if handled >= BATCH:
        WAKEUPS.labels("backlog").inc()
        return
    listener = res.listener(CHANNEL, _listening)
    if listener is None or not listener.listening:
        await asyncio.sleep(res.settings.outbox_interval_s)
        WAKEUPS.labels("poll").inc()
        return
    global _last_pass  # noqa: PLW0603 - one relay loop per process
    rung = await _ring_or_timeout(res, listener, res.settings.outbox_idle_poll_s)
    if rung:  # under load commits ring all the time: a pass per outbox_interval_s at most, in batches
        await asyncio.sleep(res.settings.outbox_interval_s - (time.monotonic() - _last_pass))
    _last_pass = time.monotonic()
    WAKEUPS.labels("notify" if rung else "idle_poll").inc()


async def _ring_or_timeout(res: Resources, listener: Listener, seconds: float) -> bool:
    """Wait up to ``seconds`` for a ring, keeping the backlog, lag and dead-letter gauges fresh meanwhile:
    a quiet relay makes no pass, and they must not go stale (DeadLettersPresent resolves only when the
    gauge reads 0 again)."""
    deadline = time.monotonic() + seconds
    while (left := deadline - time.monotonic()) > 0:
        if await listener.wait(min(left, MEASURE_EVERY_S)):
            return True
        with tracer.start_as_current_span("outbox.measure"):
            await _measure_when_due(res)
            await _count_dead_letters(res)
    return False


def _listening(listening: bool) -> None:
    LISTENING.set(int(listening))
    log.info("outbox.wake_up_mode", mode="notify" if listening else "poll")


async def _measure_when_due(res: Resources) -> None:
    global _last_measured  # noqa: PLW0603 - one relay loop per process
    if time.monotonic() - _last_measured >= MEASURE_EVERY_S:
        _last_measured = time.monotonic()
        await measure(res)


async def measure(res: Resources) -> None:
    """Publish what waits: the count of unsent messages and the age of the oldest. Unsent rows for
    exchanges this relay does not declare (it leaves them) are logged whenever their count changes."""
    global _undeclared  # noqa: PLW0603 - one relay loop per process
    undeclared = OutboxMessage.exchange.not_in(topology.EXCHANGES)
    async with res.db()() as session:
        unsent = select(
            func.count(), func.min(OutboxMessage.created_at), func.count().filter(undeclared)
        ).where(OutboxMessage.sent_at.is_(None))
        pending, oldest, left = (await session.execute(unsent)).one()
        if left and left != _undeclared:
            named = select(OutboxMessage.exchange).where(OutboxMessage.sent_at.is_(None), undeclared)
            exchanges = sorted((await session.scalars(named.distinct())).all())
            log.warning("outbox.undeclared_exchange", unsent=int(left), exchanges=exchanges)
    _undeclared = int(left)
    PENDING.set(int(pending))
    LAG.set(0 if oldest is None else max(time.time() - oldest.timestamp(), 0))


async def _count_dead_letters(res: Resources) -> None:
    """Publish the depth of every dead-letter queue (a passive declare reads it), every few seconds."""
    global _last_dlq_check  # noqa: PLW0603 - one relay loop per process
    if time.monotonic() - _last_dlq_check < DLQ_EVERY_S:
        return
    _last_dlq_check = time.monotonic()
    # On the raw channel: aio-pika's robust channel answers a passive declare of a queue it has declared
    # from its own cache, so the count would be the first one read, forever.
    async with asyncio.timeout(DLQ_EVERY_S):  # a robust channel waits for its broker: not for long here
        channel = await (await _confirming(res))[0].get_underlay_channel()
        for queue in topology.QUEUES:
            dead = await channel.queue_declare(topology.dead_letter_queue(queue), passive=True)
            DEAD_LETTERS.labels(topology.dead_letter_queue(queue)).set(dead.message_count or 0)


_channels: dict[int, tuple[aio_pika.abc.AbstractChannel, Peer]] = {}


async def _confirming(res: Resources) -> tuple[aio_pika.abc.AbstractChannel, Peer]:
    """A confirming channel per broker connection, opened and topology-declared once (again only if it
    was closed), not per batch; and where the broker is, for the producer spans."""
    connection = await res.ensure_amqp()
    if connection is None:
        raise ConnectionError("broker unavailable; outbox messages stay queued in Postgres")
    cached = _channels.get(id(connection))
    if cached is None or cached[0].is_closed:
        channel = await connection.channel(publisher_confirms=True)
        await topology.declare(channel)
        url = urlsplit(res.settings.amqp)
        cached = (channel, Peer(url.hostname or "", url.port or 5672))
        _channels[id(connection)] = cached
    return cached


def _outgoing(row: asyncpg.Record) -> Outgoing:
    headers: dict[str, str] = json.loads(row["headers"])
    return Outgoing(
        row["exchange"], row["routing_key"], str(row["message_id"]), row["payload"].encode(), headers
    )
