"""The outbox relay's publishing: stored messages out on a confirming channel, confirms awaited together.

A stored message is already serialised: its payload as written, and the W3C trace context of the
transaction that wrote it. aio-pika's ``Exchange.publish`` would build a ``Message`` (a property setter per
field) and hand it to the same aiormq call made here, and OpenTelemetry's aio-pika instrumentation would
wrap each one in a producer span: also for the nine in ten whose trace is not sampled at the production
ratio (0.1), where that span records nothing. Here:

- the frames go out on the channel's own aiormq channel (``basic_publish``, what aio-pika calls), every
  message of a batch at once, in the batch's order (aiormq writes them under its channel's lock, in turn);
  a nack raises, as in aio-pika, and fails the whole batch (rolled back, published again next pass).
  The batch's other messages are out by then and may be confirmed: a consumer can see a later message
  before a nacked earlier one comes again (publishing one at a time never sent the later one first).
  The consumers do not depend on that order (they dedupe on the message id and check the booking's
  state), and no batch holds messages that depend on each other today;
- a message whose trace is sampled, or that has none, gets a producer span like the instrumentation's (the
  same name, ``<exchange>,<routing key> send``, kind, and attributes but its ``messaging.temp_destination``,
  which it sets to true for every exchange), and that span's context in its headers;
- a message of an unsampled trace keeps its stored headers: the consumer continues the same unsampled
  trace, as it would have continued the instrumentation's non-recording span.

Measured in ``bench/results/outbox-publish/``.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from dataclasses import dataclass

import aiormq
import structlog
from aio_pika import DeliveryMode
from aio_pika.abc import AbstractChannel
from opentelemetry import propagate, trace
from pamqp.commands import Basic

log = structlog.get_logger()
tracer = trace.get_tracer("opentelemetry.instrumentation.aio_pika")
#: a broker that stops confirming (a memory or disk alarm blocks publishers) fails the pass after this,
#: rather than holding its transaction and row locks open: the batch stays unsent and is tried again
CONFIRM_TIMEOUT_S = 30.0


@dataclass(frozen=True, slots=True)
class Outgoing:
    exchange: str
    routing_key: str
    message_id: str
    body: bytes
    #: the stored W3C trace context (and whatever else the writer put there)
    headers: dict[str, str]


@dataclass(frozen=True, slots=True)
class Peer:
    """Where the broker is, for the producer spans' attributes."""

    host: str
    port: int


async def publish_all(channel: AbstractChannel, peer: Peer, messages: list[Outgoing]) -> None:
    """Publish every message and wait for the broker's confirms; raise if any was not confirmed."""
    if not messages:
        return
    if channel.is_closed:
        raise aiormq.exceptions.ChannelInvalidStateError(f"{channel!r} closed")
    raw = await channel.get_underlay_channel()
    timestamp = dt.datetime.now(dt.UTC)
    async with asyncio.timeout(CONFIRM_TIMEOUT_S):
        await asyncio.gather(*(_publish(raw, peer, message, timestamp) for message in messages))


async def _publish(
    raw: aiormq.abc.AbstractChannel, peer: Peer, message: Outgoing, timestamp: dt.datetime
) -> None:
    parent = propagate.extract(message.headers)
    stored = trace.get_current_span(parent).get_span_context()
    if stored.is_valid and not stored.trace_flags.sampled:
        await _send(raw, message, message.headers, timestamp)
        return
    destination = f"{message.exchange},{message.routing_key}"
    attributes: dict[str, str | int] = {
        "messaging.system": "rabbitmq",
        "messaging.destination": destination,
        "messaging.message_id": message.message_id,
        "net.peer.name": peer.host,
        "net.peer.port": peer.port,
    }
    with tracer.start_as_current_span(
        f"{destination} send", context=parent, kind=trace.SpanKind.PRODUCER, attributes=attributes
    ):
        headers = dict(message.headers)
        propagate.inject(headers)
        await _send(raw, message, headers, timestamp)


async def _send(
    raw: aiormq.abc.AbstractChannel, message: Outgoing, headers: dict[str, str], timestamp: dt.datetime
) -> None:
    properties = Basic.Properties(
        content_type="application/json",
        delivery_mode=DeliveryMode.PERSISTENT,
        message_id=message.message_id,
        timestamp=timestamp,
        headers=dict(headers),
    )
    confirmed = await raw.basic_publish(
        message.body,
        exchange=message.exchange,
        routing_key=message.routing_key,
        properties=properties,
        mandatory=True,
    )
    if not isinstance(confirmed, Basic.Ack):  # returned: no queue is bound to its routing key
        log.warning("outbox.unroutable", exchange=message.exchange, routing_key=message.routing_key)
