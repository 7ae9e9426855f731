"""The server span of a sampled request, written directly instead of by OpenTelemetry's ASGI middleware.

Counted in instructions (bench/results/request-telemetry/), a sampled request's server span cost ~0.7
million, about three times what the whole of an unsampled request's telemetry costs. Most of that was
OpenTelemetry's ASGI middleware doing what this service does not need: it extracted the caller's context a
second time (the edge already has it), set each of its ~11 attributes twice (once when it started the
span, again in a loop), read headers by decoding every header of the request for each one it wanted, went
through its semantic-convention switches and recorded duration histograms to a meter provider that is not
there (the service's metrics are Prometheus's). This writes the server span with OpenTelemetry's SDK, under
the instrumentation scope ``jatra.http``:

- started under the context the edge extracted (the caller's trace and baggage), as a SERVER span named
  ``{method} (unrouted)`` until routing renames it to its route template (`name_span_by_route`);
- with the stable HTTP semantic conventions' names, which are also the access log's ECS fields:
  ``http.request.method`` (a method outside the standard ones is ``_OTHER``, and the span's name says
  ``HTTP``, so names stay bounded), ``url.scheme``, ``url.path``, ``url.query`` (as sent),
  ``server.address`` and ``server.port`` (the connection's local address as the server reports it, not
  the client's Host header), ``network.protocol.version``, ``user_agent.original``, then ``http.route``
  and ``http.response.status_code``;
- a 5xx response, or an exception that escapes the app before the response ends, sets the span's status
  to ERROR and ``error.type`` (the status code, or the exception's type); the exception is recorded as an
  event;
- ended when the last of the response's body is sent (no response here sends trailers), as OpenTelemetry's
  middleware ends it; an exception after that is raised on, the span already ended.

Not recorded: the client's address and port (OpenTelemetry's ``net.peer.ip``, ``client.address``). The
gateway's logs leave a passenger's address out as personal data; the spans now do too. Whatever the
client sent (path, query, user agent) is scrubbed on its way to the exporters (`span_scrub`).
"""

from __future__ import annotations

from typing import Any

from litestar.types import ASGIApp, Message, Receive, Scope, Send
from opentelemetry import context, trace
from opentelemetry.context import Context
from opentelemetry.trace import SpanKind, Status, StatusCode

#: methods named as they are; any other is ``_OTHER`` (a client chooses it: span names stay bounded)
METHODS = frozenset({"CONNECT", "DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "POST", "PUT", "TRACE"})


def method_named(scope: Scope, other: str = "HTTP") -> str:
    """The request's method if it is a standard one, else ``other`` (a client chooses it: bounded)."""
    method = str(scope.get("method", ""))
    return method if method in METHODS else other


def request_attributes(scope: Scope) -> dict[str, Any]:
    """The request's attributes, known before the app runs (no client address: see the module)."""
    attributes: dict[str, Any] = {
        "http.request.method": method_named(scope, "_OTHER"),
        "url.scheme": scope.get("scheme", "http"),
        "url.path": scope.get("path", ""),
    }
    if version := scope.get("http_version"):
        attributes["network.protocol.version"] = version
    if (query := scope.get("query_string")) and isinstance(query, bytes):
        attributes["url.query"] = query.decode("latin-1")  # as the access log reads it
    server = scope.get("server")
    if server and len(server) == 2:  # (host, port); a Unix socket's is (path, None)
        attributes["server.address"] = str(server[0])
        if isinstance(server[1], int):
            attributes["server.port"] = server[1]
    for name, value in scope.get("headers", ()):
        if name == b"user-agent":
            attributes["user_agent.original"] = value.decode("utf-8", "replace")
            break
    return attributes


def span_name(scope: Scope) -> str:
    return f"{method_named(scope)} (unrouted)"


async def traced(
    tracer: trace.Tracer, app: ASGIApp, scope: Scope, receive: Receive, send: Send, parent: Context
) -> None:
    """Run ``app`` for a sampled request under its server span, a child of ``parent``'s span if any."""
    span = tracer.start_span(
        span_name(scope), context=parent, kind=SpanKind.SERVER, attributes=request_attributes(scope)
    )

    async def send_and_record(message: Message) -> None:
        kind = message["type"]
        if message["type"] == "http.response.start":  # (not `kind`: mypy narrows the message by this)
            status = message["status"]
            span.set_attribute("http.response.status_code", status)
            if status >= 500:  # a server's span: a 4xx is the client's error, not the server's
                span.set_attribute("error.type", str(status))
                span.set_status(StatusCode.ERROR)
        await send(message)
        if kind == "http.response.body" and not message.get("more_body", False):
            span.end()

    token = context.attach(trace.set_span_in_context(span, parent))
    try:
        await app(scope, receive, send_and_record)
    except Exception as exc:
        if span.is_recording():
            span.record_exception(exc)
            span.set_attribute("error.type", type(exc).__qualname__)
            span.set_status(Status(StatusCode.ERROR, f"{type(exc).__name__}: {exc}"))
        raise
    finally:
        context.detach(token)
        if span.is_recording():
            span.end()
