"""Spans leave the process without personal data: every text value scrubbed on the way to the exporter.

Most spans carry only what the code put there (route templates, parameterised SQL, Redis commands with
their arguments already replaced by ``?``). Two kinds carry what someone else wrote:

- the server span of a sampled request (`jatra.telemetry.server_span`): what the client sent, the path, the
  query as sent (``url.query``), the user agent; a query such as ``?phone=%2B8801712345678`` or a
  mistyped path with an e-mail in it would be kept as sent (OpenTelemetry's own middleware, where the
  edge cannot decide, records the URL decoded, ``http.url``, and the path, ``http.target``);
- an exception recorded on a span (a consumer's span records whatever its handler raised): its message
  and stack trace, which can quote a value (an SMTP refusal names the address it refused).

`ScrubbingExporter` wraps each exporter (OTLP, the local stack's JSON lines) and passes each span
through `scrubbed`: the same object when no text value changes (nearly every span), else a copy with the
span's attributes, its events' attributes and its status description scrubbed by the logs' patterns
(`jatra.telemetry.redact.scrub`), and a URL's query parameters named like personal data emptied as the
access log's are (`scrub_query`, `scrub_url`: a passenger's name has no pattern). Attribute names are not
judged by name as log fields are: OpenTelemetry's own end in ``name`` (``db.operation.name``), and the
code sets none that holds personal data. The span's name, its links and the resource are the code's own
and are not searched, nor are the attributes only the code or the deployment sets (`CODE_OWN`): a statement's
text above all (``db.statement``: the code's own SQL, its parameters never recorded, as the
instrumentations are set up; ~11 µs a statement to search). Over the spans of the dev stack's last
sampled rushes, searching costs ~10 µs a span with every text, ~5.5 without the statements and ~2 as
here (the searches alone, bench/results/request-telemetry/). It runs on the batch processor's export
thread, for sampled spans only; a span it cannot scrub fails its batch (counted as failed), rather than
leave unscrubbed.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from opentelemetry.sdk.trace import Event, ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult
from opentelemetry.trace import Status

from jatra.telemetry.redact import URL_KEYS, scrub, scrub_url

#: what a client sent as a URL, its path or its query, and how each is scrubbed: a URL or path decoded
#: (OpenTelemetry's ``http.url``, a path's encoded "?" as a "?") loses its whole query when a parameter is
#: named like personal data (`scrub_url`); a query as sent, each such parameter's value, as in the access
#: log (`scrub_query`). The logs' own table (`URL_KEYS`) with OpenTelemetry's other names for a URL.
URLS: dict[str, Callable[[str], str]] = {
    **URL_KEYS, "http.url": scrub_url, "url.full": scrub_url, "http.target": scrub_url,
}  # fmt: skip


def _clean(value: Any) -> Any:
    """``value`` scrubbed if it is text or holds text (the SDK keeps a list as a tuple)."""
    if isinstance(value, str):
        return scrub(value)
    if isinstance(value, tuple | list) and any(isinstance(v, str) for v in value):
        return type(value)(scrub(v) if isinstance(v, str) else v for v in value)
    return value


#: what only the code or the deployment writes, never a client: not searched (see the module)
CODE_OWN = frozenset({
    "db.statement", "db.query.text", "db.system", "db.system.name", "db.name", "db.namespace", "db.user",
    "net.peer.name", "server.address", "messaging.system", "messaging.operation", "messaging.destination",
    "messaging.destination.name", "http.route",
})  # fmt: skip


def _cleaned(attributes: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """The attributes with every text value scrubbed, or None when none changes."""
    if not attributes:
        return None
    changed: dict[str, Any] | None = None
    for key, value in attributes.items():
        if key in CODE_OWN:
            continue
        url = URLS.get(key)
        clean = url(value) if url is not None and isinstance(value, str) else _clean(value)
        if clean != value:
            if changed is None:
                changed = dict(attributes)
            changed[key] = clean
    return changed


class ScrubbedSpan(ReadableSpan):
    """A span as exported, some of its text scrubbed; what the original dropped (past the SDK's limits) is
    still reported."""

    def __init__(self, original: ReadableSpan, **changes: Any) -> None:
        fields: dict[str, Any] = {
            "name": original.name,
            "context": original.context,
            "parent": original.parent,
            "resource": original.resource,
            "attributes": original.attributes,
            "events": original.events,
            "links": original.links,
            "kind": original.kind,
            "status": original.status,
            "start_time": original.start_time,
            "end_time": original.end_time,
            "instrumentation_scope": original.instrumentation_scope,
        }
        super().__init__(**(fields | changes))
        self.original = original

    @property
    def dropped_attributes(self) -> int:
        return self.original.dropped_attributes

    @property
    def dropped_events(self) -> int:
        return self.original.dropped_events

    @property
    def dropped_links(self) -> int:
        return self.original.dropped_links


class ScrubbedEvent(Event):
    """An event as exported, its attributes scrubbed; what the original dropped is still reported."""

    def __init__(self, original: Event, attributes: dict[str, Any]) -> None:
        super().__init__(original.name, attributes, original.timestamp)
        self.original = original

    @property
    def dropped_attributes(self) -> int:
        return self.original.dropped_attributes


def scrubbed(span: ReadableSpan) -> ReadableSpan:
    """``span`` itself when no text of it changes (nearly every span: no copy made), else a copy."""
    changes: dict[str, Any] = {}
    if (attributes := _cleaned(span.attributes)) is not None:
        changes["attributes"] = attributes
    events = list(span.events)
    for i, event in enumerate(events):
        if (event_attributes := _cleaned(event.attributes)) is not None:
            events[i] = ScrubbedEvent(event, event_attributes)
            changes["events"] = events
    status = span.status
    if status.description and (description := scrub(status.description)) != status.description:
        changes["status"] = Status(status.status_code, description)
    return ScrubbedSpan(span, **changes) if changes else span


class ScrubbingExporter(SpanExporter):
    """Hands the exporter it wraps each span `scrubbed`."""

    def __init__(self, inner: SpanExporter) -> None:
        self.inner = inner

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        return self.inner.export([scrubbed(span) for span in spans])

    def shutdown(self) -> None:
        self.inner.shutdown()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return self.inner.force_flush(timeout_millis)
