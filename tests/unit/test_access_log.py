"""The access event written directly (`AccessLog`) is the line structlog's processor chain writes for the
same fields: the same document, the same redaction, the same trace context and counter; and a request
through the app writes one, or goes through the chain when context variables are bound."""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import Iterator
from typing import Any

import pytest
import structlog
from litestar import Litestar, get
from litestar.plugins.structlog import StructlogPlugin
from litestar.testing import TestClient
from opentelemetry import trace
from prometheus_client import REGISTRY

from jatra.settings import load_settings
from jatra.telemetry.access_log import AccessLog, AccessLogConfig
from jatra.telemetry.logs import ACCESS_LOGGER, LOG_EVENTS, _ServiceFields, request_logging_config

BASE = {
    "http.request.method": "GET",
    "url.path": "/api/v1/journeys/1234/seats",
    "http.response.status_code": 200,
    "event.duration": 1_234_567,
}
CASES = [
    BASE,
    {**BASE, "http.route": "/api/v1/journeys/{journey_id}/seats", "url.query": "from=DA&to=CGP"},
    {**BASE, "http.request.id": "4f1c2a9e-rush", "http.response.status_code": 404},
    # what a client sends may hold personal data: scrubbed the same way by both
    {**BASE, "url.path": "/api/v1/users/rahim@example.com", "url.query": "phone=%2B8801712345678"},
    {**BASE, "url.path": "/api/v1/users/rahim%40example.com", "url.query": "to=rahim%40example.com"},
    {**BASE, "url.query": "otp=123456&to=01712345678", "http.request.id": "01712345678"},
    # a name has no pattern: a parameter named like personal data loses its value, as a field would
    {
        **BASE,
        "url.query": "from=DA&passenger=Rahim+Uddin&passengers%5B0%5D%5Bname%5D=Karim&phone=01712345678",
    },
]
SPAN = trace.NonRecordingSpan(
    trace.SpanContext(trace_id=0xABC, span_id=0xDEF, is_remote=False, trace_flags=trace.TraceFlags(1))
)


class Lines(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.lines: list[str] = []

    def write_line(self, line: str) -> None:
        self.lines.append(line)

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


@pytest.fixture
def sink() -> Iterator[Lines]:
    request_logging_config(load_settings({}), "api")  # configures logging, as the app does
    root = logging.getLogger()
    saved = root.handlers[:]
    lines = Lines()
    root.handlers[:] = [lines]
    yield lines
    root.handlers[:] = saved
    structlog.contextvars.clear_contextvars()
    request_logging_config(load_settings({}), "unit")


def direct(level: int = logging.INFO) -> AccessLog:
    service = _ServiceFields("api", load_settings({}).environment).fields
    return AccessLog(service, ACCESS_LOGGER, level, LOG_EVENTS.labels("info"))


def document(line: str) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(line)
    doc.pop("@timestamp")
    return doc


def info_events() -> float:
    return REGISTRY.get_sample_value("jatra_telemetry_log_events_total", {"level": "info"}) or 0.0


@pytest.mark.parametrize("fields", CASES)
@pytest.mark.parametrize("in_span", [False, True])
def test_the_direct_line_is_the_chains_line(sink: Lines, fields: dict[str, Any], in_span: bool) -> None:
    access = direct()
    with trace.use_span(SPAN) if in_span else contextlib.nullcontext():
        chained = structlog.get_logger(ACCESS_LOGGER)
        chained.info("http.request", **fields)
        counted = info_events()
        access.write("http.request", fields)
        assert info_events() == counted + 1
    [by_chain, by_access] = sink.lines
    assert by_access.startswith('{"@timestamp":')
    assert document(by_access) == document(by_chain)
    assert list(document(by_access)) == list(document(by_chain))  # the same order of fields too
    assert ("trace" in document(by_access)) is in_span
    for leak in ("rahim", "Rahim", "Karim", "1712345678", "otp=123456"):
        assert leak not in by_access


def test_nothing_is_written_or_counted_below_the_level(sink: Lines) -> None:
    counted = info_events()
    direct(logging.WARNING).write("http.request", BASE)
    assert sink.lines == [] and info_events() == counted


@get("/ping", sync_to_thread=False)
def ping() -> str:
    return "pong"


def test_a_request_writes_one_event_directly_or_through_the_chain_with_bound_context(sink: Lines) -> None:
    config = request_logging_config(load_settings({}), "api")
    assert isinstance(config.middleware_logging_config, AccessLogConfig)
    assert config.middleware_logging_config.access is not None
    app = Litestar([ping], plugins=[StructlogPlugin(config)])
    logging.getLogger().handlers[:] = [sink]  # configuring the app's logging replaced them
    with TestClient(app) as client:
        assert client.get("/ping?a=1", headers={"x-request-id": "abc-1"}).status_code == 200
        [event] = [document(line) for line in sink.lines if '"http.request"' in line]
        assert event["url"] == {"path": "/ping", "query": "a=1"}
        assert event["http"]["request"] == {"method": "GET", "id": "abc-1"}
        assert event["http"]["route"] == "/ping" and event["log"] == {"logger": ACCESS_LOGGER}
        assert "tenant" not in event
        sink.lines.clear()
        structlog.contextvars.bind_contextvars(tenant="t-1")
        assert client.get("/ping").status_code == 200
        [event] = [document(line) for line in sink.lines if '"http.request"' in line]
        assert event["tenant"] == "t-1"  # bound context: structlog's chain merged it
