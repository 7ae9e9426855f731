"""RabbitMQ topology, declared idempotently by every process that publishes or consumes.

Quorum queues (durable, replicated in a cluster), each with a dead-letter exchange and a delivery limit,
so a poison message ends up in `<queue>.dead` instead of looping forever.
"""

from __future__ import annotations

from aio_pika import ExchangeType
from aio_pika.abc import AbstractChannel, AbstractExchange

PAYMENTS = "jatra.payments"  # direct: payment requests
EVENTS = "jatra.events"  # topic: booking.confirmed, booking.payment_failed, booking.cancelled ...
DLX = "jatra.dlx"  # direct: dead letters, routed by the queue they died in
#: every exchange and its type: what ``declare`` declares, and all the outbox relay publishes to
KINDS = {PAYMENTS: ExchangeType.DIRECT, EVENTS: ExchangeType.TOPIC, DLX: ExchangeType.DIRECT}
EXCHANGES = frozenset(KINDS)
#: not RabbitMQ: the Redis channel rung with a booking id when its payment settles (long polls wait on it)
SETTLED_CHANNEL = "jatra:bookings:settled"

PAYMENT_REQUESTS = "payments.requests"
NOTIFICATIONS = "notifications"
QUEUES = {
    PAYMENT_REQUESTS: (PAYMENTS, ["payment.requested", "refund.requested"]),
    NOTIFICATIONS: (EVENTS, ["booking.*"]),
}
DELIVERY_LIMIT = 5


def dead_letter_queue(queue: str) -> str:
    return f"{queue}.dead"


async def declare(channel: AbstractChannel) -> dict[str, AbstractExchange]:
    exchanges = {
        name: await channel.declare_exchange(name, kind, durable=True) for name, kind in KINDS.items()
    }
    for queue, (exchange, keys) in QUEUES.items():
        dead = await channel.declare_queue(
            dead_letter_queue(queue), durable=True, arguments={"x-queue-type": "quorum"}
        )
        await dead.bind(exchanges[DLX], routing_key=queue)
        declared = await channel.declare_queue(
            queue,
            durable=True,
            arguments={
                "x-queue-type": "quorum",
                "x-dead-letter-exchange": DLX,
                "x-dead-letter-routing-key": queue,
                "x-delivery-limit": DELIVERY_LIMIT,
            },
        )
        for key in keys:
            await declared.bind(exchanges[exchange], routing_key=key)
    return exchanges
