"""`jatra trace`: one trace from the local stack's OTLP JSON files, drawn as a waterfall in the terminal.

The stack's processes write their spans to ``STATE_DIR/traces/<process>.jsonl`` (see
:mod:`jatra.telemetry.trace_export`). A trace is found by its id (as in a log line's ``trace.id`` or a
latency panel's exemplar) or by a booking id (the booking's outbox message carries its W3C trace context).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

BAR = 40
#: OTLP enums: integers in OTLP/JSON, names in what some encoders write; both are read
KINDS = ("SPAN_KIND_UNSPECIFIED", "SPAN_KIND_INTERNAL", "SPAN_KIND_SERVER", "SPAN_KIND_CLIENT",
         "SPAN_KIND_PRODUCER", "SPAN_KIND_CONSUMER")  # fmt: skip
STATUS_CODES = ("STATUS_CODE_UNSET", "STATUS_CODE_OK", "STATUS_CODE_ERROR")
STATUS_ERROR = 2


@dataclass(slots=True)
class Span:
    span_id: str
    parent_id: str
    name: str
    service: str
    start_ns: int
    end_ns: int
    kind: int
    error: bool
    attributes: dict[str, Any]
    children: list[Span] = field(default_factory=list)

    @property
    def duration_ms(self) -> float:
        return (self.end_ns - self.start_ns) / 1e6


def _enum(raw: int | str, names: tuple[str, ...]) -> int:
    return names.index(raw) if isinstance(raw, str) and raw in names else int(raw)


def _value(attr: dict[str, Any]) -> Any:
    value = attr.get("value", {})
    for kind in ("stringValue", "intValue", "doubleValue", "boolValue"):
        if kind in value:
            return value[kind]
    return None


def spans_of(trace_id: str, directory: Path) -> list[Span]:
    """Every span of ``trace_id`` in the files of ``directory`` (rotated files included)."""
    found: list[Span] = []
    needle = f'"traceId":"{trace_id}"'
    for path in sorted(directory.glob("*.jsonl*")):
        with path.open() as lines:
            for line in lines:
                if needle not in line:
                    continue
                for resource in json.loads(line).get("resourceSpans", []):
                    attrs = {a["key"]: _value(a) for a in resource.get("resource", {}).get("attributes", [])}
                    service = str(attrs.get("service.name", "?"))
                    for scope in resource.get("scopeSpans", []):
                        found += [
                            _span(s, service) for s in scope.get("spans", []) if s["traceId"] == trace_id
                        ]
    return found


def _span(raw: dict[str, Any], service: str) -> Span:
    return Span(
        span_id=raw["spanId"],
        parent_id=raw.get("parentSpanId", ""),
        name=raw["name"],
        service=service,
        start_ns=int(raw["startTimeUnixNano"]),
        end_ns=int(raw["endTimeUnixNano"]),
        kind=_enum(raw.get("kind", 0), KINDS),
        error=_enum(raw.get("status", {}).get("code", 0), STATUS_CODES) == STATUS_ERROR,
        attributes={a["key"]: _value(a) for a in raw.get("attributes", [])},
    )


def tree(spans: list[Span]) -> list[Span]:
    """The roots (spans whose parent is not in the trace), each with its children, in start order."""
    by_id = {s.span_id: s for s in spans}
    roots: list[Span] = []
    for span in sorted(spans, key=lambda s: s.start_ns):
        parent = by_id.get(span.parent_id)
        (parent.children if parent is not None else roots).append(span)
    return roots


def waterfall(trace_id: str, spans: list[Span]) -> str:
    """The trace as text: one line per span, indented under its parent, with a bar on a shared time axis."""
    if not spans:
        return f"no spans of trace {trace_id} (is the stack writing traces? JATRA_TRACE_DIR)"
    start = min(s.start_ns for s in spans)
    total = max(max(s.end_ns for s in spans) - start, 1)
    services = sorted({s.service for s in spans})
    lines = [
        f"trace {trace_id}: {len(spans)} spans in {total / 1e6:.1f} ms across {', '.join(services)}",
    ]

    def draw(span: Span, depth: int) -> None:
        left = int((span.start_ns - start) / total * BAR)
        width = max(1, int((span.end_ns - span.start_ns) / total * BAR))
        bar = " " * left + "█" * min(width, BAR - left)
        flag = " !" if span.error else ""
        label = f"{'  ' * depth}{span.name}{flag}"
        lines.append(
            f"{(span.start_ns - start) / 1e6:9.1f} ms {span.duration_ms:9.1f} ms |{bar:<{BAR}}| "
            f"{span.service:24} {label}"
        )
        for child in span.children:
            draw(child, depth + 1)

    for root in tree(spans):
        draw(root, 0)
    return "\n".join(lines)


def trace_id_of_booking(headers: dict[str, str]) -> str | None:
    """The trace id in a W3C ``traceparent`` header (version-traceid-spanid-flags)."""
    parts = headers.get("traceparent", "").split("-")
    return parts[1] if len(parts) == 4 and len(parts[1]) == 32 else None
