"""The sampling decided at the edge: the same traces sampled as before, and nothing done for the rest."""

from __future__ import annotations

from typing import Any

import pytest
from litestar import Litestar, get
from litestar.testing import TestClient
from opentelemetry import baggage, propagate, trace
from opentelemetry.context import Context
from opentelemetry.instrumentation.asgi import asgi_getter
from opentelemetry.instrumentation.utils import is_instrumentation_enabled
from opentelemetry.propagators.composite import CompositePropagator
from opentelemetry.propagators.textmap import TextMapPropagator
from opentelemetry.sdk.trace import TracerProvider, id_generator
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from jatra.telemetry.edge_sampling import ReservedIdGenerator, _propagated
from jatra.telemetry.tracing import http_tracing_middleware

CALLER_TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
CALLER_SPAN = "00f067aa0ba902b7"


def traced_app(ratio: float) -> tuple[Litestar, InMemorySpanExporter, TracerProvider]:
    sampler = ParentBased(TraceIdRatioBased(ratio))
    provider = TracerProvider(sampler=sampler, id_generator=ReservedIdGenerator())
    spans = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(spans))
    tracer = provider.get_tracer("test")

    @get("/seen", sync_to_thread=False)
    def seen() -> dict[str, Any]:
        """What the handler, its logs and its client calls see of the trace."""
        current = trace.get_current_span().get_span_context()
        with tracer.start_as_current_span("new root", context=Context()) as root:
            other_trace = root.get_span_context().trace_id
        return {
            "trace_id": format(current.trace_id, "032x"),
            "sampled": current.trace_flags.sampled,
            "recording": trace.get_current_span().is_recording(),
            "instrumented": is_instrumentation_enabled(),
            "a_new_root_has_its_own_trace": other_trace != current.trace_id,
            "baggage": dict(baggage.get_all()),
        }

    return Litestar([seen], middleware=[http_tracing_middleware(provider)]), spans, provider


def server_spans(spans: InMemorySpanExporter) -> list[Any]:
    return [s for s in spans.get_finished_spans() if s.kind is trace.SpanKind.SERVER]


def test_an_unsampled_request_is_not_traced_but_keeps_its_trace_id_and_quiets_the_client_calls() -> None:
    app, spans, _ = traced_app(0.0)
    with TestClient(app) as client:
        seen = client.get("/seen").json()
    assert seen["sampled"] is False and seen["recording"] is False and seen["instrumented"] is False
    assert int(seen["trace_id"], 16) != 0  # logs carry it, and the outbox passes it on, unsampled
    assert server_spans(spans) == []


def test_a_sampled_request_is_traced_as_before() -> None:
    app, spans, _ = traced_app(1.0)
    with TestClient(app) as client:
        seen = client.get("/seen").json()
    assert seen["sampled"] is True and seen["recording"] is True and seen["instrumented"] is True
    (server,) = server_spans(spans)
    assert format(server.context.trace_id, "032x") == seen["trace_id"]
    assert seen["a_new_root_has_its_own_trace"]  # the trace id drawn at the edge is used once only


@pytest.mark.parametrize(("flags", "ratio", "traced"), [("01", 0.0, True), ("00", 1.0, False)])
def test_a_callers_decision_is_followed(flags: str, ratio: float, traced: bool) -> None:
    app, spans, _ = traced_app(ratio)
    with TestClient(app) as client:
        headers = {"traceparent": f"00-{CALLER_TRACE}-{CALLER_SPAN}-{flags}"}
        seen = client.get("/seen", headers=headers).json()
    assert seen["trace_id"] == CALLER_TRACE and seen["sampled"] is traced and seen["instrumented"] is traced
    assert [format(s.parent.span_id, "016x") for s in server_spans(spans) if s.parent] == (
        [CALLER_SPAN] if traced else []
    )


def test_the_traces_sampled_are_exactly_those_the_ratio_picks_each_traced_once() -> None:
    app, spans, provider = traced_app(0.5)
    with TestClient(app) as client:
        seen = [client.get("/seen").json() for _ in range(200)]
    bound = TraceIdRatioBased.get_bound_for_rate(0.5)
    for request in seen:  # the sampler's own rule on the trace id: the edge drew it, the span kept it
        assert request["sampled"] is (int(request["trace_id"], 16) & TraceIdRatioBased.TRACE_ID_LIMIT < bound)
    sampled = sorted(r["trace_id"] for r in seen if r["sampled"])
    assert sorted(format(s.context.trace_id, "032x") for s in server_spans(spans)) == sampled
    assert 0 < len(sampled) < 200
    provider.shutdown()


def test_the_trace_id_the_edge_decided_on_is_the_one_the_server_span_gets(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The sampler decides on the trace id: were the server span to draw another, a trace the edge let in
    could be dropped there (ratio x ratio sampled). Here the edge draws one the ratio picks, and any later
    draw one it does not."""
    picked, refused = (1 << 100) | 5, (1 << 100) | (2**64 - 5)  # the low 64 bits are what the ratio compares
    draws = iter([picked, refused, refused, refused])
    real = id_generator.random.getrandbits
    monkeypatch.setattr(
        id_generator.random, "getrandbits", lambda bits: next(draws) if bits == 128 else real(bits)
    )
    app, spans, _ = traced_app(0.5)
    with TestClient(app) as client:
        seen = client.get("/seen").json()
    assert seen["sampled"] is True and seen["trace_id"] == format(picked, "032x")
    assert [s.context.trace_id for s in server_spans(spans)] == [picked]


def test_a_request_without_the_propagators_headers_is_not_extracted_and_loses_nothing() -> None:
    """The edge skips extraction when none of the propagator's headers is there: what extracting would
    give then is an empty context (asked of OpenTelemetry itself, so a change there shows here)."""
    plain = {"type": "http", "headers": [(b"host", b"api"), (b"x-request-id", b"r-1")]}
    assert not _propagated(plain)
    assert propagate.extract(plain, getter=asgi_getter) == Context()  # type: ignore[misc]
    for header in (b"traceparent", b"tracestate", b"baggage"):
        assert _propagated({"type": "http", "headers": [(b"host", b"api"), (header, b"x")]})


@pytest.mark.parametrize("ratio", [0.0, 1.0])
def test_baggage_alone_is_still_extracted(ratio: float) -> None:
    app, _, _ = traced_app(ratio)
    with TestClient(app) as client:
        seen = client.get("/seen", headers={"baggage": "fare.class=snigdha"}).json()
    assert seen["baggage"] == {"fare.class": "snigdha"}
    assert seen["sampled"] is (ratio == 1.0)  # no caller's trace: the edge's own decision


class CallerHeader(TextMapPropagator):
    """A propagator of another kind: it reads a header its ``fields`` (what it writes) do not name, as B3's
    single header or Jaeger's ``uberctx-*`` are. The trace id (hex) of a sampled caller."""

    def extract(self, carrier: Any, context: Context | None = None, getter: Any = None) -> Context:
        found = (getter or asgi_getter).get(carrier, "x-caller-trace")
        if not found:
            return context if context is not None else Context()
        parent = trace.SpanContext(int(found[0], 16), int(CALLER_SPAN, 16), True, trace.TraceFlags(1))
        return trace.set_span_in_context(trace.NonRecordingSpan(parent), context)

    def inject(self, carrier: Any, context: Context | None = None, setter: Any = None) -> None:
        pass

    @property
    def fields(self) -> set[str]:
        return {"x-caller-context"}


@pytest.mark.parametrize("composite", [False, True])
def test_with_another_propagator_every_request_is_extracted(composite: bool) -> None:
    app, spans, _ = traced_app(0.0)
    saved = propagate.get_global_textmap()
    other = CallerHeader()
    propagate.set_global_textmap(
        CompositePropagator([TraceContextTextMapPropagator(), other]) if composite else other
    )
    try:
        with TestClient(app) as client:
            seen = client.get("/seen", headers={"x-caller-trace": CALLER_TRACE}).json()
            plain = client.get("/seen").json()
    finally:
        propagate.set_global_textmap(saved)
    assert seen["trace_id"] == CALLER_TRACE and seen["sampled"] is True
    assert [format(s.context.trace_id, "032x") for s in server_spans(spans)] == [CALLER_TRACE]
    assert plain["sampled"] is False and plain["trace_id"] != CALLER_TRACE  # its own, unsampled
