"""A sampled request's server span, written by `jatra.telemetry.server_span`: its name, its attributes by
the stable HTTP conventions (and no client address), its status, its parent, and when it ends."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
from litestar import Litestar, Request, get
from litestar.exceptions import HTTPException
from litestar.params import FromPath
from litestar.testing import TestClient
from opentelemetry import baggage, trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.sampling import ALWAYS_ON
from opentelemetry.trace import SpanKind, StatusCode

from jatra.telemetry.edge_sampling import ReservedIdGenerator
from jatra.telemetry.server_span import request_attributes
from jatra.telemetry.tracing import http_tracing_middleware, name_span_by_route

CALLER_TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
CALLER_SPAN = "00f067aa0ba902b7"
AFTER_SEND: list[int] = []


@get("/journeys/{journey_id:int}", sync_to_thread=False)
def journey(journey_id: FromPath[int]) -> dict[str, Any]:
    return {"id": journey_id, "fare": baggage.get_baggage("fare.class")}


@get("/broken", sync_to_thread=False)
def broken() -> None:
    raise HTTPException(status_code=503, detail="down")


@get("/refused", sync_to_thread=False)
def refused() -> None:
    raise HTTPException(status_code=409, detail="taken")


async def raw(scope: Any, receive: Any, send: Any) -> None:
    """A bare ASGI app: answers, then works on after the response's last byte, then fails when told to."""
    if scope["type"] != "http":
        return
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"ok"})
    AFTER_SEND.append(time.time_ns())
    await asyncio.sleep(0.02)
    if scope["path"] == "/fails":
        raise RuntimeError("after the answer")


async def route_naming_hook(request: Request[Any, Any, Any]) -> None:
    name_span_by_route(request.scope)  # as the app's before_request does


def provider_into(spans: InMemorySpanExporter) -> TracerProvider:
    provider = TracerProvider(sampler=ALWAYS_ON, id_generator=ReservedIdGenerator())
    provider.add_span_processor(SimpleSpanProcessor(spans))
    return provider


def server_span(spans: InMemorySpanExporter) -> ReadableSpan:
    [span] = [s for s in spans.get_finished_spans() if s.kind is SpanKind.SERVER]
    return span


@pytest.fixture
def traced() -> tuple[TestClient[Litestar], InMemorySpanExporter]:
    spans = InMemorySpanExporter()
    app = Litestar(
        [journey, broken, refused],
        middleware=[http_tracing_middleware(provider_into(spans))],
        before_request=route_naming_hook,
    )
    return TestClient(app, base_url="http://api.test:8000"), spans


def test_a_sampled_request_has_the_stable_conventions_attributes_and_no_client_address(
    traced: tuple[TestClient[Litestar], InMemorySpanExporter],
) -> None:
    client, spans = traced
    with client:
        answer = client.get("/journeys/7?from=DA&to=CT", headers={"user-agent": "app/2.1"})
    assert answer.status_code == 200
    span = server_span(spans)
    assert span.name == "GET /journeys/{journey_id}"  # renamed by route once routed
    assert span.instrumentation_scope is not None and span.instrumentation_scope.name == "jatra.http"
    assert dict(span.attributes or {}) == {
        "http.request.method": "GET",
        "url.scheme": "http",
        "url.path": "/journeys/7",
        "url.query": "from=DA&to=CT",
        "network.protocol.version": "1.1",
        "server.address": "api.test",  # the connection's local address (here the test client's base URL)
        "server.port": 8000,
        "user_agent.original": "app/2.1",
        "http.route": "/journeys/{journey_id}",
        "http.response.status_code": 200,
    }
    assert span.status.status_code is StatusCode.UNSET and span.parent is None


def test_the_callers_trace_and_baggage_are_continued(
    traced: tuple[TestClient[Litestar], InMemorySpanExporter],
) -> None:
    client, spans = traced
    headers = {"traceparent": f"00-{CALLER_TRACE}-{CALLER_SPAN}-01", "baggage": "fare.class=snigdha"}
    with client:
        answer = client.get("/journeys/7", headers=headers)
    assert answer.json()["fare"] == "snigdha"
    span = server_span(spans)
    assert format(span.context.trace_id, "032x") == CALLER_TRACE
    assert span.parent is not None and format(span.parent.span_id, "016x") == CALLER_SPAN


@pytest.mark.parametrize(("path", "status", "error"), [("/broken", 503, True), ("/refused", 409, False)])
def test_a_server_error_marks_the_span_and_a_client_error_does_not(
    traced: tuple[TestClient[Litestar], InMemorySpanExporter], path: str, status: int, error: bool
) -> None:
    client, spans = traced
    with client:
        assert client.get(path).status_code == status
    span = server_span(spans)
    attributes = dict(span.attributes or {})
    assert attributes["http.response.status_code"] == status
    assert (span.status.status_code is StatusCode.ERROR) is error
    assert attributes.get("error.type") == (str(status) if error else None)


def test_a_method_outside_the_standard_ones_keeps_names_bounded() -> None:
    spans = InMemorySpanExporter()
    app = Litestar([journey], middleware=[http_tracing_middleware(provider_into(spans))])
    with TestClient(app) as client:
        client.request("FROBNICATE", "/nowhere")
    span = server_span(spans)
    assert span.name == "HTTP (unrouted)"
    assert (span.attributes or {})["http.request.method"] == "_OTHER"


def test_the_span_ends_with_the_answer_and_an_exception_after_it_is_still_raised() -> None:
    """Ended at the response's last byte, as OpenTelemetry's middleware ends it: work after it is not the
    request's latency. An exception after that is raised on (the server logs it), the span already gone."""
    spans = InMemorySpanExporter()
    app = http_tracing_middleware(provider_into(spans))(raw)
    for path in ("/works", "/fails"):
        AFTER_SEND.clear()
        sent: list[Any] = []
        current, raised = call(app, {"type": "http", "method": "GET", "path": path}, sent)
        assert isinstance(raised, RuntimeError) is (path == "/fails") and current is trace.INVALID_SPAN
        span = next(s for s in spans.get_finished_spans() if (s.attributes or {})["url.path"] == path)
        assert span.end_time is not None and span.end_time <= AFTER_SEND[0]
        assert span.status.status_code is StatusCode.UNSET and len(sent) == 2


def call(app: Any, scope: dict[str, Any], sent: list[Any] | None = None) -> Any:
    """Run ``app`` for ``scope``; what the current span is once it has returned or raised, in the same
    context (``asyncio.run`` runs on a copy: a context left attached would not show outside it)."""

    async def receive() -> Any:
        return {"type": "http.request", "body": b""}

    async def send(message: Any) -> None:
        if sent is not None:
            sent.append(message)

    async def run() -> tuple[Any, BaseException | None]:
        try:
            await app({"http_version": "1.1", "headers": [], **scope}, receive, send)
        except Exception as exc:  # handed back to the test
            return trace.get_current_span(), exc
        return trace.get_current_span(), None

    return asyncio.run(run())


def test_an_exception_before_the_answer_is_recorded_on_the_span() -> None:
    spans = InMemorySpanExporter()

    async def failing(scope: Any, receive: Any, send: Any) -> None:
        raise ValueError("no answer")

    app = http_tracing_middleware(provider_into(spans))(failing)
    current, raised = call(app, {"type": "http", "method": "POST", "path": "/x"})
    assert isinstance(raised, ValueError) and current is trace.INVALID_SPAN  # raised on, the context restored
    span = server_span(spans)
    assert span.status.status_code is StatusCode.ERROR
    assert (span.attributes or {})["error.type"] == "ValueError"
    assert [e.name for e in span.events] == ["exception"]


def test_a_streamed_answer_ends_the_span_at_its_last_chunk_and_a_failure_midway_is_recorded() -> None:
    spans = InMemorySpanExporter()
    chunks_sent: list[int] = []

    async def streaming(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        for i in range(3):
            await send({"type": "http.response.body", "body": b"x", "more_body": True})
            chunks_sent.append(time.time_ns())
            if scope["path"] == "/breaks" and i == 1:
                raise ConnectionError("upstream went away")
        await send({"type": "http.response.body", "body": b"", "more_body": False})

    app = http_tracing_middleware(provider_into(spans))(streaming)
    sent: list[Any] = []
    assert call(app, {"type": "http", "method": "GET", "path": "/streams"}, sent)[1] is None
    [whole] = spans.get_finished_spans()
    assert len(sent) == 5 and whole.end_time is not None and whole.end_time >= chunks_sent[-1]
    spans.clear()
    assert isinstance(call(app, {"type": "http", "method": "GET", "path": "/breaks"})[1], ConnectionError)
    [broken] = spans.get_finished_spans()
    attributes = dict(broken.attributes or {})
    assert attributes["http.response.status_code"] == 200 and attributes["error.type"] == "ConnectionError"
    assert broken.status.status_code is StatusCode.ERROR


@pytest.mark.parametrize(
    ("server", "expected"),
    [(("10.0.0.5", 8000), {"server.address": "10.0.0.5", "server.port": 8000}),
     (("/run/jatra/api.sock", None), {"server.address": "/run/jatra/api.sock"}), (None, {})],
)  # fmt: skip
def test_the_servers_own_address_whatever_it_listens_on(
    server: tuple[str, int | None] | None, expected: dict[str, Any]
) -> None:
    scope = {"type": "http", "method": "GET", "path": "/", "server": server, "query_string": b""}
    attributes = request_attributes(scope)  # type: ignore[arg-type]
    assert {k: v for k, v in attributes.items() if k.startswith("server.")} == expected
    assert "url.query" not in attributes and "network.protocol.version" not in attributes
