"""Where spans go, and counting what happens to them (the telemetry pipeline's own metrics).

- OTLP/HTTP to a collector when ``JATRA_OTLP_ENDPOINT`` is set (compose, Helm);
- OTLP JSON lines in ``JATRA_TRACE_DIR`` (the local stack: no collector or Jaeger runs there), one
  ExportTraceServiceRequest per line, as the OpenTelemetry Collector's file exporter writes them, so other
  tools can read them and `jatra trace` draws one trace as a waterfall.

Every sampled span that ends is counted (``ended``); each exporter counts what it delivered
(``exported``) and what it could not (``failed``); the batch processor counts what it had to drop because
its queue was full (``dropped``): ``jatra_telemetry_spans_total{outcome}``.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import msgspec
from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult

from jatra.telemetry import catalogue as c
from jatra.telemetry.metrics import counter
from jatra.telemetry.otlp_json import encode

SPANS = counter(c.SPANS)


class EndedSpans(SpanProcessor):
    """Counts every sampled span as it ends: what this process produced."""

    def on_end(self, span: ReadableSpan) -> None:
        SPANS.labels("ended").inc()


class CountingExporter(SpanExporter):
    """An exporter that counts what the exporter it wraps delivered and what it failed to."""

    def __init__(self, inner: SpanExporter) -> None:
        self.inner = inner

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        try:
            result = self.inner.export(spans)
        except Exception:
            SPANS.labels("failed").inc(len(spans))
            raise
        outcome = "exported" if result is SpanExportResult.SUCCESS else "failed"
        SPANS.labels(outcome).inc(len(spans))
        return result

    def shutdown(self) -> None:
        self.inner.shutdown()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return self.inner.force_flush(timeout_millis)


class CountingBatchSpanProcessor(BatchSpanProcessor):
    """The SDK's batch processor, counting the spans it drops because its queue is full.

    The SDK logs such a drop but exposes no count; its queue is read here (a private attribute, pinned by
    the test of this class), at the moment the span would be queued."""

    def on_end(self, span: ReadableSpan) -> None:
        processor: Any = getattr(self, "_batch_processor", None)
        queue = getattr(processor, "_queue", None)
        if queue is not None and len(queue) >= processor._max_queue_size:
            SPANS.labels("dropped").inc()
        super().on_end(span)


class OtlpJsonFileExporter(SpanExporter):
    """Appends each batch as one OTLP JSON line to ``<directory>/<process>.jsonl``; past ``max_bytes`` the
    file becomes ``<process>.jsonl.1`` (replacing the one before) and a new one starts."""

    def __init__(self, directory: Path, process: str, max_bytes: int = 64 * 2**20) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.path = directory / f"{process}.jsonl"
        self.max_bytes = max_bytes
        self._lock = threading.Lock()

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        line = msgspec.json.encode(encode(spans)) + b"\n"  # OTLP JSON: jatra.telemetry.otlp_json
        try:
            with self._lock:
                if self.path.exists() and self.path.stat().st_size > self.max_bytes:
                    self.path.replace(self.path.with_name(self.path.name + ".1"))
                with self.path.open("ab") as out:
                    out.write(line)
        except OSError:
            return SpanExportResult.FAILURE
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        pass
