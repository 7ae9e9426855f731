"""A worker's message of an unsampled trace is handled with the client instrumentations quiet, as the API's
unsampled requests are (edge sampling); a sampled one, or one with no trace at all, as before. The trace id
stays current either way, for the logs and the outbox."""

from __future__ import annotations

from typing import cast

from aio_pika.abc import AbstractIncomingMessage
from opentelemetry import trace
from opentelemetry.instrumentation.utils import is_instrumentation_enabled
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF, ALWAYS_ON

from jatra.infra import outbox
from jatra.infra.consumer import Consumer

#: the handler settles the message itself (returns True), so the consumer neither acks nor nacks it
MESSAGE = cast(AbstractIncomingMessage, object())


async def test_only_an_unsampled_trace_is_handled_quietly() -> None:
    seen: list[tuple[bool, int]] = []
    passed_on: list[str] = []  # the traceparent of an outbox message the handler writes

    async def handle(_message: AbstractIncomingMessage) -> bool:
        seen.append((is_instrumentation_enabled(), trace.get_current_span().get_span_context().trace_id))
        passed_on.append(outbox.draft("jatra.events", "booking.confirmed").headers.get("traceparent", ""))
        return True

    consumer = Consumer("q", handle, 1, failed_event="failed", consuming_event="consuming")
    traces = []
    for sampler in (ALWAYS_OFF, ALWAYS_ON):
        with TracerProvider(sampler=sampler).get_tracer("t").start_as_current_span("consume") as span:
            traces.append(span.get_span_context().trace_id)
            await consumer.settle(MESSAGE)
    await consumer.settle(MESSAGE)  # no span: tracing off, or a message consumed outside any trace
    assert seen == [(False, traces[0]), (True, traces[1]), (True, 0)]
    assert is_instrumentation_enabled()  # quiet only while the message was handled
    # the outbox passes the unsampled trace on, and the sampled one sampled
    assert [p.split("-")[1] for p in passed_on[:2]] == [f"{t:032x}" for t in traces]
    assert [int(p.split("-")[3], 16) & 0x01 for p in passed_on[:2]] == [0, 1]
