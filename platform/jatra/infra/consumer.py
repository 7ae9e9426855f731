"""How a worker consumes its queue: one channel with bounded prefetch, the topology declared, each message
acked when its handler returns, put back when it raises (the queue's delivery limit then moves a message
that keeps failing to its dead-letter queue), each outcome counted in ``jatra_amqp_consumed_total``.

Retries inside a handler (a provider, a mail server) are the handler's own, with stamina.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import structlog
from aio_pika.abc import AbstractChannel, AbstractExchange, AbstractIncomingMessage

from jatra.infra import topology
from jatra.infra.resources import Resources
from jatra.telemetry import catalogue as c
from jatra.telemetry.edge_sampling import quiet_unless_sampled
from jatra.telemetry.metrics import counter

log = structlog.get_logger()
CONSUMED = counter(c.AMQP_CONSUMED)

#: a handler returns True when it settled the message itself (dead-lettered it), False to have it acked
Handler = Callable[[AbstractIncomingMessage], Awaitable[bool]]


@dataclass(frozen=True, slots=True)
class Consumer:
    queue: str
    handle: Handler
    prefetch: int
    #: the log events of a failed message and of the consumer starting (named per worker in runbooks)
    failed_event: str
    consuming_event: str
    publisher_confirms: bool = False

    async def settle(self, message: AbstractIncomingMessage) -> None:
        try:
            with quiet_unless_sampled():  # an unsampled trace: no span work for the handler's calls
                settled = await self.handle(message)
        except Exception as exc:
            # not done (Postgres, Redis or a channel in trouble): put it back; the delivery limit bounds it
            CONSUMED.labels(self.queue, "retry").inc()
            log.exception(self.failed_event, error=str(exc), message_id=message.message_id)
            await message.nack(requeue=True)
            return
        if not settled:
            CONSUMED.labels(self.queue, "ack").inc()
            await message.ack()

    async def open(self, res: Resources) -> tuple[AbstractChannel, dict[str, AbstractExchange]]:
        """The channel, with the topology declared; its exchanges (a worker may publish to the DLX)."""
        connection = await res.ensure_amqp()
        if connection is None:
            raise ConnectionError("broker unavailable")
        channel = await connection.channel(publisher_confirms=self.publisher_confirms)
        await channel.set_qos(prefetch_count=self.prefetch)
        return channel, await topology.declare(channel)

    async def consume(self, channel: AbstractChannel) -> None:
        """Consume until cancelled or the connection dies (the worker loop then starts again)."""
        queue = await channel.get_queue(self.queue)
        await queue.consume(self.settle)
        log.info(self.consuming_event, queue=self.queue)
        await asyncio.Future()
