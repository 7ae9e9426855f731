"""The outbox relay's publishing (`jatra.infra.publish`) against the real RabbitMQ: a batch arrives whole and
in order, persistent, with its ids and headers; a sampled trace goes on through a producer span named as
aio-pika's instrumentation names it, an unsampled one passes its stored context on untouched; a
nack fails the batch (the relay then rolls back and publishes it again), an unroutable message is told."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import aio_pika
import aiormq
import pytest
import structlog
from aio_pika.abc import AbstractChannel, AbstractExchange
from litestar import Litestar
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from jatra.infra import outbox
from jatra.infra.publish import Outgoing, Peer, publish_all
from jatra.infra.resources import open_resources
from jatra.settings import Settings
from jatra.stack.manager import Stack

pytestmark = pytest.mark.integration
PEER = Peer("127.0.0.1", 5672)
Confirming = tuple[AbstractChannel, AbstractExchange]


@pytest.fixture
async def confirming(stack: Stack, settings: Settings) -> AsyncIterator[Confirming]:
    """A confirming channel on the real broker, and a topic exchange of the test's own (gone after it)."""
    connection = await aio_pika.connect_robust(settings.amqp)
    async with connection:
        channel = await connection.channel(publisher_confirms=True)
        exchange = await channel.declare_exchange(
            f"test.publish.{uuid.uuid4().hex[:8]}", aio_pika.ExchangeType.TOPIC, auto_delete=True
        )
        yield channel, exchange


def traceparent(sampled: bool) -> tuple[str, str, str]:
    """(header, trace id, span id) of a writer's span."""
    trace_id, span_id = uuid.uuid4().hex, uuid.uuid4().hex[:16]
    return f"00-{trace_id}-{span_id}-{'01' if sampled else '00'}", trace_id, span_id


async def test_a_batch_goes_out_in_order_and_only_sampled_traces_get_a_producer_span(
    confirming: Confirming, app: Litestar, spans: InMemorySpanExporter
) -> None:
    """``app`` installs the tracer provider (sampling 1.0, parent-based) with ``spans`` in it."""
    channel, exchange = confirming
    queue = await channel.declare_queue(exclusive=True)
    await queue.bind(exchange, routing_key="t.#")
    writers = [traceparent(sampled=i % 2 == 0) for i in range(6)]
    batch = [
        Outgoing(exchange.name, f"t.{i}", str(uuid.uuid4()), b"%d" % i, {"traceparent": w, "x-kept": "1"})
        for i, (w, _, _) in enumerate(writers)
    ]
    # and one written outside any trace
    batch.append(Outgoing(exchange.name, "t.none", str(uuid.uuid4()), b"{}", {}))
    await publish_all(channel, PEER, batch)
    received = [await queue.get(timeout=10) for _ in batch]
    for message in received:
        await message.ack()
    assert [m.routing_key for m in received] == [o.routing_key for o in batch]
    assert [m.message_id for m in received] == [o.message_id for o in batch]
    assert [m.body for m in received] == [o.body for o in batch]
    assert {(m.delivery_mode, m.content_type) for m in received} == {(2, "application/json")}

    sent = {
        s.attributes["messaging.message_id"]: s  # type: ignore[index]
        for s in spans.get_finished_spans()
        if s.name.startswith(f"{exchange.name},")
    }
    for i, (stored, trace_id, span_id) in enumerate(writers):
        outgoing, message = batch[i], received[i]
        header = str((message.headers or {})["traceparent"])
        assert (message.headers or {})["x-kept"] == "1"
        if i % 2:  # unsampled: passed on as stored (a span made for it, even one recording nothing, would
            assert header == stored  # have put its own span id there)
            continue
        span = sent[outgoing.message_id]
        assert span.name == f"{exchange.name},t.{i} send" and span.kind == SpanKind.PRODUCER
        assert span.parent is not None and f"{span.parent.span_id:016x}" == span_id
        assert f"{span.context.trace_id:032x}" == trace_id
        assert header == f"00-{trace_id}-{span.context.span_id:016x}-01"  # the consumer continues from it
        assert span.attributes is not None and span.attributes["messaging.system"] == "rabbitmq"
        assert (span.attributes["net.peer.name"], span.attributes["net.peer.port"]) == (PEER.host, PEER.port)
    orphan = sent[batch[-1].message_id]  # a message with no trace starts one, as the sampler decides
    assert orphan.parent is None and "traceparent" in (received[-1].headers or {})
    assert len(sent) == 4


async def test_a_nack_fails_the_batch_and_an_unroutable_message_is_told(
    confirming: Confirming,
) -> None:
    channel, exchange = confirming
    full = await channel.declare_queue(  # the broker refuses (nacks) whatever would go past 0 messages
        exclusive=True, arguments={"x-max-length": 0, "x-overflow": "reject-publish"}
    )
    await full.bind(exchange, routing_key="full")

    def one(key: str) -> Outgoing:
        return Outgoing(exchange.name, key, str(uuid.uuid4()), b"{}", {})

    with structlog.testing.capture_logs() as logs:
        await publish_all(channel, PEER, [one("nowhere")])
    assert [e["event"] for e in logs] == ["outbox.unroutable"]
    assert logs[0]["routing_key"] == "nowhere"

    with pytest.raises(aiormq.exceptions.DeliveryError):
        await publish_all(channel, PEER, [one("nowhere"), one("full")])
    await channel.close()
    with pytest.raises(aiormq.exceptions.ChannelInvalidStateError):
        await publish_all(channel, PEER, [one("nowhere")])


async def test_the_relays_channel_is_kept_and_names_its_broker(stack: Stack, settings: Settings) -> None:
    """The relay's confirming channel is opened (and the topology declared) once per broker connection, not
    per pass, and the producer spans' ``net.peer.*`` name the broker of the settings' URL."""
    async with open_resources(settings, "publish-test", frozenset({"amqp"})) as res:
        channel, peer = await outbox._confirming(res)
        again, _ = await outbox._confirming(res)
        assert again is channel and not channel.is_closed
        assert peer == Peer("127.0.0.1", settings.ports.amqp)
