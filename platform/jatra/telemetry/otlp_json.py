"""Spans as OTLP JSON, written straight from the SDK's spans.

The same document the OTLP protobuf encoder followed by protobuf's ``MessageToDict`` gives (a test holds
the two equal), without building protobuf messages and walking them again by reflection in pure Python:
that path was about half of the CPU our own code spent in an API replica (py-spy, issue 13). The
OTLP/JSON rules: camelCase names, trace and span ids in hex, 64-bit integers as strings, enums as
integers, fields with their default value left out.
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import SpanContext, SpanKind
from opentelemetry.util.types import Attributes

#: OTLP's SpanKind numbers are the SDK's plus one (0 is UNSPECIFIED)
_KIND = {kind: kind.value + 1 for kind in SpanKind}
_HAS_IS_REMOTE, _IS_REMOTE = 0x100, 0x200


def encode(spans: Sequence[ReadableSpan]) -> dict[str, Any]:
    """An ExportTraceServiceRequest: spans grouped by resource, then by instrumentation scope."""
    grouped: dict[Resource, dict[InstrumentationScope | None, list[dict[str, Any]]]] = {}
    for span in spans:
        scopes = grouped.setdefault(span.resource, {})
        scopes.setdefault(span.instrumentation_scope or None, []).append(_span(span))
    resource_spans = []
    for resource, scopes in grouped.items():
        entry: dict[str, Any] = {
            "resource": _with_attributes({}, resource.attributes),
            "scopeSpans": [_scope_spans(scope, encoded) for scope, encoded in scopes.items()],
        }
        if resource.schema_url:
            entry["schemaUrl"] = resource.schema_url
        resource_spans.append(entry)
    return {"resourceSpans": resource_spans} if resource_spans else {}


def _scope_spans(scope: InstrumentationScope | None, spans: list[dict[str, Any]]) -> dict[str, Any]:
    described: dict[str, Any] = {}
    if scope is not None:
        if scope.name:
            described["name"] = scope.name
        if scope.version:
            described["version"] = scope.version
        _with_attributes(described, scope.attributes)
    entry: dict[str, Any] = {"scope": described, "spans": spans}
    if scope is not None and scope.schema_url:
        entry["schemaUrl"] = scope.schema_url
    return entry


def _span(span: ReadableSpan) -> dict[str, Any]:
    context = span.get_span_context()
    assert context is not None  # an SDK span always has one
    out: dict[str, Any] = {"traceId": f"{context.trace_id:032x}", "spanId": f"{context.span_id:016x}"}
    if context.trace_state:
        out["traceState"] = ",".join(f"{k}={v}" for k, v in context.trace_state.items())
    if span.parent is not None:
        out["parentSpanId"] = f"{span.parent.span_id:016x}"
    out["flags"] = _flags(span.parent)
    if span.name:
        out["name"] = span.name
    out["kind"] = _KIND[span.kind]
    if span.start_time:
        out["startTimeUnixNano"] = str(span.start_time)
    if span.end_time:
        out["endTimeUnixNano"] = str(span.end_time)
    _with_attributes(out, span.attributes)
    if span.dropped_attributes:
        out["droppedAttributesCount"] = span.dropped_attributes
    if span.events:
        out["events"] = [_event(e.name, e.timestamp, e.attributes, e.dropped_attributes) for e in span.events]
    if span.dropped_events:
        out["droppedEventsCount"] = span.dropped_events
    if span.links:
        out["links"] = [_link(link.context, link.attributes, link.dropped_attributes) for link in span.links]
    if span.dropped_links:
        out["droppedLinksCount"] = span.dropped_links
    status: dict[str, Any] = {}
    if span.status.description:
        status["message"] = span.status.description
    if span.status.status_code.value:
        status["code"] = span.status.status_code.value
    out["status"] = status
    return out


def _flags(parent: SpanContext | None) -> int:
    return _HAS_IS_REMOTE | (_IS_REMOTE if parent is not None and parent.is_remote else 0)


def _event(name: str, timestamp: int, attributes: Attributes, dropped: int) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if timestamp:
        out["timeUnixNano"] = str(timestamp)
    if name:
        out["name"] = name
    _with_attributes(out, attributes)
    if dropped:
        out["droppedAttributesCount"] = dropped
    return out


def _link(context: SpanContext, attributes: Attributes, dropped: int) -> dict[str, Any]:
    # (the official encoder leaves a link's trace state out; so does this one, to write the same)
    out: dict[str, Any] = {"traceId": f"{context.trace_id:032x}", "spanId": f"{context.span_id:016x}"}
    _with_attributes(out, attributes)
    if dropped:
        out["droppedAttributesCount"] = dropped
    out["flags"] = _flags(context)
    return out


def _with_attributes(out: dict[str, Any], attributes: Attributes) -> dict[str, Any]:
    if attributes:
        out["attributes"] = [{"key": str(k), "value": _value(v)} for k, v in attributes.items()]
    return out


#: (type, OTLP field, conversion), in this order: a bool is also an int
_SCALARS: tuple[tuple[type, str, Callable[[Any], Any]], ...] = (
    (bool, "boolValue", bool),
    (str, "stringValue", str),
    (int, "intValue", str),  # 64-bit integers are strings in OTLP JSON
    (float, "doubleValue", float),
    (bytes, "bytesValue", lambda v: base64.b64encode(v).decode()),
)


def _value(value: Any) -> dict[str, Any]:
    if value is None:
        return {}
    for kind, name, convert in _SCALARS:
        if isinstance(value, kind):
            return {name: convert(value)}
    if isinstance(value, Sequence):
        return {"arrayValue": {"values": [_value(v) for v in value]} if value else {}}
    if isinstance(value, Mapping):
        pairs = [{"key": str(k), "value": _value(v)} for k, v in value.items()]
        return {"kvlistValue": {"values": pairs} if pairs else {}}
    raise TypeError(f"cannot encode an attribute of type {type(value).__name__}")
