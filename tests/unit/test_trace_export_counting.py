"""What the trace pipeline counts: spans ended, exported, failed and dropped; and the OTLP JSON it writes."""

from __future__ import annotations

import json
import threading
from collections.abc import Sequence
from pathlib import Path

from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter, SpanExportResult
from opentelemetry.trace import SpanKind, Status, StatusCode
from prometheus_client import REGISTRY

from jatra.observability.traces import spans_of
from jatra.telemetry.trace_export import (
    CountingBatchSpanProcessor,
    CountingExporter,
    EndedSpans,
    OtlpJsonFileExporter,
)


def spans(outcome: str) -> float:
    return REGISTRY.get_sample_value("jatra_telemetry_spans_total", {"outcome": outcome}) or 0.0


class Refusing(SpanExporter):
    def export(self, batch: Sequence[ReadableSpan]) -> SpanExportResult:
        return SpanExportResult.FAILURE


class Blocked(SpanExporter):
    """An exporter stuck on its first batch, so the processor's queue fills up."""

    def __init__(self) -> None:
        self.release = threading.Event()

    def export(self, batch: Sequence[ReadableSpan]) -> SpanExportResult:
        self.release.wait(10)
        return SpanExportResult.SUCCESS


def test_ended_exported_and_failed_spans_are_counted(tmp_path: Path) -> None:
    before = {o: spans(o) for o in ("ended", "exported", "failed")}
    provider = TracerProvider()
    provider.add_span_processor(EndedSpans())
    provider.add_span_processor(SimpleSpanProcessor(CountingExporter(OtlpJsonFileExporter(tmp_path, "unit"))))
    provider.add_span_processor(SimpleSpanProcessor(CountingExporter(Refusing())))
    tracer = provider.get_tracer("test")
    with (
        tracer.start_as_current_span("parent"),
        tracer.start_as_current_span("child", kind=SpanKind.CLIENT) as child_span,
    ):
        child_span.set_status(Status(StatusCode.ERROR))
    assert spans("ended") == before["ended"] + 2
    assert spans("exported") == before["exported"] + 2 and spans("failed") == before["failed"] + 2
    lines = (tmp_path / "unit.jsonl").read_text().splitlines()
    written = [
        s
        for line in lines
        for r in json.loads(line)["resourceSpans"]
        for ss in r["scopeSpans"]
        for s in ss["spans"]
    ]
    child = next(s for s in written if s["name"] == "child")
    parent = next(s for s in written if s["name"] == "parent")
    assert len(child["traceId"]) == 32 and int(child["traceId"], 16)  # hex, as OTLP JSON wants, not base64
    assert child["parentSpanId"] == parent["spanId"] and len(parent["spanId"]) == 16
    assert child["kind"] == 3 and child["status"]["code"] == 2  # enums as integers, as OTLP/JSON wants
    [read] = [s for s in spans_of(child["traceId"], tmp_path) if s.name == "child"]
    assert read.kind == 3 and read.error  # and `jatra trace` reads them back


def test_the_trace_reader_also_reads_enum_names(tmp_path: Path) -> None:
    span = {
        "traceId": "ab" * 16,
        "spanId": "cd" * 8,
        "name": "x",
        "kind": "SPAN_KIND_PRODUCER",
        "startTimeUnixNano": "1",
        "endTimeUnixNano": "2",
        "status": {"code": "STATUS_CODE_ERROR"},
    }
    line = {"resourceSpans": [{"resource": {}, "scopeSpans": [{"spans": [span]}]}]}
    (tmp_path / "p.jsonl").write_text(json.dumps(line, separators=(",", ":")) + "\n")
    [read] = spans_of("ab" * 16, tmp_path)
    assert read.kind == 4 and read.error


def test_a_full_export_queue_counts_what_it_drops() -> None:
    before = spans("dropped")
    blocked = Blocked()
    processor = CountingBatchSpanProcessor(
        blocked, max_queue_size=4, max_export_batch_size=1, schedule_delay_millis=1
    )
    provider = TracerProvider()
    provider.add_span_processor(processor)
    tracer = provider.get_tracer("test")
    for _ in range(20):
        with tracer.start_as_current_span("s"):
            pass
    blocked.release.set()
    provider.shutdown()
    assert spans("dropped") - before >= 20 - 4 - 2  # the queue holds 4, one batch may be in flight


def test_the_trace_file_rotates_past_its_size(tmp_path: Path) -> None:
    exporter = OtlpJsonFileExporter(tmp_path, "small", max_bytes=1)
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("test")
    for _ in range(3):
        with tracer.start_as_current_span("s"):
            pass
    assert (tmp_path / "small.jsonl").exists() and (tmp_path / "small.jsonl.1").exists()
