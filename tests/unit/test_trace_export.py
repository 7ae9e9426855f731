"""Spans leave a process over OTLP/HTTP when JATRA_OTLP_ENDPOINT is set, sampled by a parent-based ratio.

A real OTLP/HTTP receiver (a loopback HTTP server decoding the protobuf export requests) stands where the
collector of compose and Helm stands; the process under test is a fresh Python process, as a service is.
"""

from __future__ import annotations

import subprocess
import sys
import threading
from collections import Counter
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

EMIT = """
from opentelemetry import trace
from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags, set_span_in_context
from jatra.settings import load_settings
from jatra.telemetry.tracing import setup_tracing

provider = setup_tracing(load_settings(), "otlp-test")
tracer = trace.get_tracer("test")
for i in range(200):
    with tracer.start_as_current_span("root"):
        pass
sampled_parent = SpanContext(trace_id=0xABC, span_id=0xDEF, is_remote=True, trace_flags=TraceFlags(1))
with tracer.start_as_current_span("child", context=set_span_in_context(NonRecordingSpan(sampled_parent))):
    pass
provider.shutdown()
"""


class Receiver(BaseHTTPRequestHandler):
    spans: Counter[str]
    services: set[str]

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        request = ExportTraceServiceRequest.FromString(body)
        for resource_spans in request.resource_spans:
            attributes = {a.key: a.value.string_value for a in resource_spans.resource.attributes}
            self.services.add(attributes["service.name"])
            for scope in resource_spans.scope_spans:
                self.spans.update(span.name for span in scope.spans)
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def receiver() -> Iterator[tuple[str, type[Receiver]]]:
    handler = type("Handler", (Receiver,), {"spans": Counter(), "services": set()})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", handler
    server.shutdown()


def emit(endpoint: str, ratio: float) -> None:
    env = {"JATRA_OTLP_ENDPOINT": endpoint, "JATRA_TRACE_SAMPLE_RATIO": str(ratio), "PATH": "/usr/bin:/bin"}
    command = [sys.executable, "-c", EMIT]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr


@pytest.mark.parametrize(("ratio", "low", "high"), [(1.0, 200, 200), (0.0, 0, 0), (0.25, 10, 90)])
def test_spans_are_exported_over_otlp_by_a_parent_based_ratio(
    receiver: tuple[str, type[Receiver]], ratio: float, low: int, high: int
) -> None:
    endpoint, seen = receiver
    emit(endpoint, ratio)
    assert low <= seen.spans["root"] <= high  # new traces: sampled by the ratio
    assert seen.spans["child"] == 1  # a sampled parent's child is always sampled, whatever the ratio
    assert seen.services == {"jatra-otlp-test"}
