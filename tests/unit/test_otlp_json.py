"""The direct OTLP JSON encoder writes exactly what the reference path writes: the official OTLP protobuf
encoder, then protobuf's MessageToDict with the OTLP/JSON id rule (hex, not base64). Spans of every
shape: each kind, remote and local parents, attributes of every type, events, links with trace state,
error and ok statuses, two instrumentation scopes and two resources."""

from __future__ import annotations

import base64
from typing import Any

import pytest
from google.protobuf.json_format import MessageToDict
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import (
    Link,
    NonRecordingSpan,
    SpanContext,
    SpanKind,
    Status,
    StatusCode,
    TraceFlags,
    TraceState,
    set_span_in_context,
)

from jatra.telemetry.otlp_json import encode

IDS = ("traceId", "spanId", "parentSpanId")


def reference(spans: list[ReadableSpan]) -> dict[str, Any]:
    body: dict[str, Any] = MessageToDict(encode_spans(spans), use_integers_for_enums=True)
    for resource in body.get("resourceSpans", []):
        for scope in resource.get("scopeSpans", []):
            for span in scope.get("spans", []):
                for item in [span, *span.get("links", [])]:
                    for key in IDS:
                        if key in item:
                            item[key] = base64.b64decode(item[key]).hex()
    return body


def spans_of_every_shape(resource: Resource) -> list[ReadableSpan]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider(resource=resource)
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    api = provider.get_tracer("jatra.test", "1.2.3")
    other = provider.get_tracer("other.scope")
    remote = SpanContext(
        trace_id=0xABC, span_id=0xDEF, is_remote=True, trace_flags=TraceFlags(1),
        trace_state=TraceState([("vendor", "x1")]),
    )  # fmt: skip
    attributes = {
        "text": "Dhaka", "empty": "", "count": 7, "big": 2**62, "zero": 0, "ratio": 0.5, "yes": True,
        "no": False, "words": ["a", "b"], "numbers": [1, 2], "flags": [True], "none": [],
    }  # fmt: skip
    with api.start_as_current_span(
        "POST /api/v1/bookings", context=set_span_in_context(NonRecordingSpan(remote)), kind=SpanKind.SERVER,
        attributes=attributes, links=[Link(remote, {"why": "retry"})],
    ) as server:  # fmt: skip
        server.add_event("booking.created", {"jatra.booking.amount": 1045})
        server.add_event("bare")
        for kind in SpanKind:
            with api.start_as_current_span(f"child {kind.name}", kind=kind) as child:
                child.set_status(Status(StatusCode.OK))
        with other.start_as_current_span("failing") as failing:
            failing.set_status(Status(StatusCode.ERROR, "the provider did not answer"))
            failing.record_exception(TimeoutError("no answer"))
    with api.start_as_current_span("root without parent"):
        pass
    return list(exporter.get_finished_spans())


@pytest.mark.parametrize(
    "resources",
    [
        [Resource.create({"service.name": "jatra-api"})],
        [Resource.create({"service.name": "jatra-api"}), Resource({"service.name": "jatra-payments"})],
        [Resource({}, schema_url="https://opentelemetry.io/schemas/1.21.0")],
    ],
)
def test_the_direct_encoder_writes_what_the_protobuf_path_writes(resources: list[Resource]) -> None:
    spans = [s for resource in resources for s in spans_of_every_shape(resource)]
    assert len(spans) >= 8 * len(resources)
    assert encode(spans) == reference(spans)


def test_no_spans_is_an_empty_request() -> None:
    assert encode([]) == reference([]) == {}
