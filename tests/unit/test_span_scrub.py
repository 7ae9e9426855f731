"""Spans leave the process scrubbed: a client's URL, path and user agent on the server span, an exception's
message on any span, a status description; a span with nothing personal goes out as it was."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any, ClassVar

import pytest
from litestar import Litestar, get
from litestar.testing import TestClient
from opentelemetry.instrumentation._semconv import _StabilityMode
from opentelemetry.instrumentation.asgi import collect_request_attributes
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.sampling import ALWAYS_ON
from opentelemetry.trace import SpanKind, Status, StatusCode

from jatra.settings import load_settings
from jatra.telemetry import tracing
from jatra.telemetry.edge_sampling import ReservedIdGenerator
from jatra.telemetry.server_span import request_attributes
from jatra.telemetry.span_scrub import CODE_OWN, ScrubbedSpan, ScrubbingExporter, scrubbed
from jatra.telemetry.tracing import http_tracing_middleware

LEAKS = ("rahim", "Rahim", "Uddin", "Karim", "1712345678", "123456")


def provider_into(exporter: InMemorySpanExporter) -> TracerProvider:
    provider = TracerProvider(sampler=ALWAYS_ON, id_generator=ReservedIdGenerator())
    provider.add_span_processor(SimpleSpanProcessor(ScrubbingExporter(exporter)))
    return provider


def texts(span: ReadableSpan) -> str:
    """Every text of a span as exported: its name, its attributes, its events' attributes, its status."""
    events = [dict(e.attributes or {}) for e in span.events]
    return json.dumps([span.name, dict(span.attributes or {}), events, span.status.description], default=str)


@get("/journeys", sync_to_thread=False)
def journeys() -> str:
    return "ok"


def test_what_a_client_sent_is_scrubbed_on_the_server_span() -> None:
    exported = InMemorySpanExporter()
    app = Litestar([journeys], middleware=[http_tracing_middleware(provider_into(exported))])
    with TestClient(app) as client:
        client.get(
            "/journeys?to=rahim%40example.com&q=otp+123456&from=DA",  # found by the patterns
            headers={"user-agent": "app/2.1 rahim@example.com"},
        )
        client.get("/journeys?from=DA&passenger=Rahim+Uddin&passengers%5B0%5D%5Bname%5D=Karim")  # by name
        # an encoded "&" in a value: the query is recorded as sent, so it stays inside the value
        client.get("/journeys?from=DA&passenger=Rahim%26Karim%3DUddin&phone=%2B8801712345678")
        client.get("/users/01712345678/journeys")  # a mistyped path: 404, still traced
        client.get("/journeys?from=DA%26passenger%3DKarim")  # a name hidden in a value, encoded
        client.get("/journeys%3Fpassenger=Rahim+Uddin")  # an encoded "?": the server decodes the path
    servers = [s for s in exported.get_finished_spans() if s.kind is SpanKind.SERVER]
    assert len(servers) == 6
    for span in servers:
        assert not any(leak in texts(span) for leak in LEAKS), texts(span)
    by_pattern, *by_name, mistyped, hidden, in_path = (dict(s.attributes or {}) for s in servers)
    assert hidden["url.query"] == "[redacted]" and in_path["url.path"] == "/journeys?[redacted]"
    assert by_pattern["url.path"] == "/journeys" and by_pattern["url.query"].endswith("&from=DA")
    assert by_pattern["user_agent.original"].startswith("app/2.1 ")  # the rest as sent
    assert by_pattern["http.request.method"] == "GET" and by_pattern["http.response.status_code"] == 200
    assert [a["url.query"] for a in by_name] == [
        "from=DA&passenger=[redacted]&passengers%5B0%5D%5Bname%5D=[redacted]",
        "from=DA&passenger=[redacted]&phone=+88017*****678",
    ]  # by name, each parameter, as in the access log
    assert mistyped["http.response.status_code"] == 404 and "0171" in mistyped["url.path"]


def test_an_exception_and_a_status_are_scrubbed_and_what_was_dropped_is_still_reported() -> None:
    exported = InMemorySpanExporter()
    tracer = provider_into(exported).get_tracer("test")
    with pytest.raises(OSError), tracer.start_as_current_span("notify") as span:
        span.set_attribute("booking.id", "b-1")
        span.set_status(Status(StatusCode.ERROR, "refused: rahim@example.com"))
        raise OSError("smtp: {'rahim@example.com': (550, b'no such user')} to 01712345678")
    [out] = exported.get_finished_spans()
    assert isinstance(out, ScrubbedSpan)
    assert not any(leak in texts(out) for leak in LEAKS), texts(out)
    [event] = out.events
    assert event.name == "exception" and (event.attributes or {})["exception.type"] == "OSError"
    assert (out.attributes or {})["booking.id"] == "b-1" and out.status.status_code is StatusCode.ERROR
    assert out.name == "notify" and out.context == out.original.context and out.end_time


def test_past_the_sdks_limits_the_dropped_counts_survive_the_copy() -> None:
    """The SDK keeps 128 attributes a span and an event; the exporters report how many it dropped."""
    exported = InMemorySpanExporter()
    tracer = provider_into(exported).get_tracer("test")
    with tracer.start_as_current_span("many") as span:
        for i in range(130):
            span.set_attribute(f"a{i}", "x")
        span.set_attribute("contact", "rahim@example.com")
        span.add_event("many", {**{f"e{i}": "x" for i in range(130)}, "to": "rahim@example.com"})
    [out] = exported.get_finished_spans()
    assert isinstance(out, ScrubbedSpan) and out.dropped_attributes == 3
    assert [e.dropped_attributes for e in out.events] == [3]
    assert "rahim" not in texts(out)


def test_a_span_with_nothing_personal_goes_out_as_it_was() -> None:
    exported = InMemorySpanExporter()
    tracer = provider_into(exported).get_tracer("test")
    with tracer.start_as_current_span("seats.hold") as span:
        span.set_attributes(
            {"journey.id": "1234", "seats": ("A1", "A2"), "count": 2, "db.statement": "EVALSHA ? ?"}
        )
    [out] = exported.get_finished_spans()
    assert not isinstance(out, ScrubbedSpan) and scrubbed(out) is out


def test_a_list_of_texts_is_scrubbed_item_by_item() -> None:
    exported = InMemorySpanExporter()
    tracer = provider_into(exported).get_tracer("test")
    with tracer.start_as_current_span("x") as span:
        span.set_attribute("to", ["01712345678", "DA"])
    [out] = exported.get_finished_spans()
    to: Any = (out.attributes or {})["to"]
    assert "1712345678" not in str(to) and to[1] == "DA" and len(to) == 2


class Collector(BaseHTTPRequestHandler):
    """An OTLP/HTTP receiver: keeps what each export request carried."""

    received: ClassVar[list[bytes]] = []

    def do_POST(self) -> None:
        self.received.append(self.rfile.read(int(self.headers["content-length"])))
        self.send_response(200)
        self.send_header("content-type", "application/x-protobuf")
        self.end_headers()

    def log_message(self, *_: Any) -> None:
        pass


def test_both_exporters_of_a_process_write_scrubbed_spans(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """What setup_tracing builds, end to end: the local stack's OTLP JSON lines and OTLP/HTTP to a
    collector (a receiver here) each get the span scrubbed."""
    Collector.received.clear()
    server = HTTPServer(("127.0.0.1", 0), Collector)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    monkeypatch.setattr(tracing, "_provider", None)
    monkeypatch.setattr(tracing, "_instrument_clients", lambda provider: None)
    monkeypatch.setattr(tracing.trace, "set_tracer_provider", lambda provider: None)
    settings = load_settings({
        "JATRA_TELEMETRY_ENABLED": "true", "JATRA_TRACE_SAMPLE_RATIO": "1.0",
        "JATRA_TRACE_DIR": str(tmp_path), "JATRA_OTLP_ENDPOINT": f"http://127.0.0.1:{server.server_port}",
    })  # fmt: skip
    provider = tracing.setup_tracing(settings, "scrub-test")
    assert provider is not None
    try:
        with provider.get_tracer("test").start_as_current_span("notify") as span:
            span.set_attribute("to", "rahim@example.com")
            span.set_attribute("booking.id", "b-7")
        assert provider.force_flush(10_000)
    finally:
        provider.shutdown()
        server.shutdown()
        server.server_close()
    written = (tmp_path / "scrub-test.jsonl").read_text()
    [sent] = Collector.received
    request = ExportTraceServiceRequest.FromString(sent)
    [exported] = [s for r in request.resource_spans for ss in r.scope_spans for s in ss.spans]
    for text in (written, str(exported.attributes)):
        assert "b-7" in text and "rahim" not in text


@pytest.mark.parametrize("mode", [_StabilityMode.DEFAULT, _StabilityMode.HTTP_DUP])
def test_no_attribute_left_unsearched_holds_what_a_client_sent(mode: _StabilityMode) -> None:
    """`CODE_OWN` is not searched: none of OpenTelemetry's request attributes in it may come from the
    client's host, path, query or user agent (under the old conventions and the new)."""
    sent = "rahim@example.com"
    scope = {
        "type": "http", "method": "GET", "scheme": "http", "http_version": "1.1", "root_path": "",
        "path": f"/x/{sent}", "query_string": f"to={sent}".encode(), "server": ("10.0.0.1", 8000),
        "client": ("10.0.0.2", 5000), "headers": [(b"host", sent.encode()), (b"user-agent", sent.encode())],
    }  # fmt: skip
    for attributes in (collect_request_attributes(scope, mode), request_attributes(scope)):  # theirs, ours
        assert any(sent in str(v) for v in attributes.values())  # the client's text is there
        assert not [k for k, v in attributes.items() if k in CODE_OWN and sent in str(v)]
