"""Admission control in the real app: a busy process refuses a search with a 503 the route's metrics,
trace and access log all see, and still serves a booking's long poll and the health probes."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from jatra.infra.admission import AdmissionGate, AdmissionPlugin
from tests.fixtures.app import EcsLines
from tests.integration.helpers import a_journey, sample, travel_day

pytestmark = pytest.mark.integration


@pytest.fixture
def gate(app: Litestar, monkeypatch: pytest.MonkeyPatch) -> Iterator[AdmissionGate]:
    gate = app.plugins.get(AdmissionPlugin).gate
    assert gate.limits == {"new": 8, "choosing": 20, "continuing": 32}  # the defaults
    assert gate.standing_s == 0.1
    monkeypatch.setattr(gate, "standing_s", 0.0)  # the count below has stayed there long enough
    yield gate
    assert gate.in_flight >= 0


async def test_a_busy_process_refuses_a_search_and_says_so_everywhere(
    client: AsyncTestClient[Litestar], gate: AdmissionGate, spans: InMemorySpanExporter, ecs_logs: EcsLines
) -> None:
    journey = await a_journey(client)  # before the process is busy
    labels = {"path": "/api/v1/journeys", "status_code": "503", "service": "catalog", "method": "GET"}
    metrics = (await client.get("/metrics")).text
    before = sample(metrics, "jatra_http_requests_total", **labels)
    shed_before = sample(metrics, "jatra_http_requests_shed_total", phase="new")
    spans.clear()

    gate._log_due = 0.0  # whatever an earlier refusal in this process logged
    gate.in_flight += gate.limits["new"]  # as if that many requests were being worked on
    try:
        search = await client.get(
            "/api/v1/journeys", params={"from": "DA", "to": "SYT", "date": travel_day(5).isoformat()}
        )
        seat_map = await client.get(f"/api/v1/journeys/{journey}/seats", params={"from": "DA", "to": "SYT"})
        health = await client.get("/health")
    finally:
        gate.in_flight -= gate.limits["new"]

    assert search.status_code == 503 and search.headers["retry-after"] == "2"
    assert search.headers["content-type"] == "application/problem+json"
    assert search.json()["type"] == "https://jatra.dev/problems/overloaded"
    assert seat_map.status_code == 200  # a trip under way: its limit is higher
    assert health.status_code == 200

    metrics = (await client.get("/metrics")).text
    assert sample(metrics, "jatra_http_requests_total", **labels) == before + 1  # the SLOs see it
    assert sample(metrics, "jatra_http_requests_shed_total", phase="new") == shed_before + 1
    servers = [
        s
        for s in spans.get_finished_spans()
        if s.kind == SpanKind.SERVER and s.name == "GET /api/v1/journeys"
    ]
    [server] = servers
    assert server.attributes is not None and server.attributes["jatra.admission.refused"] == "new"
    status = server.attributes.get("http.response.status_code", server.attributes.get("http.status_code"))
    assert status == 503
    [access] = [
        line
        for line in ecs_logs.lines
        if line["message"] == "http.request"
        and line["url"]["path"] == "/api/v1/journeys"
        and line["http"]["response"]["status_code"] == 503
    ]
    assert access["http"]["route"] == "/api/v1/journeys"
    assert access["trace"]["id"] == f"{server.context.trace_id:032x}"
    assert any(line["message"] == "http.admission.shedding" for line in ecs_logs.lines)


async def test_a_long_poll_is_served_however_busy_the_process(
    client: AsyncTestClient[Litestar], gate: AdmissionGate
) -> None:
    gate.in_flight += gate.limits["continuing"]
    try:
        unknown = await client.get(f"/api/v1/bookings/{uuid.uuid4()}", params={"wait": 1})
        listing = await client.get("/api/v1/bookings")
    finally:
        gate.in_flight -= gate.limits["continuing"]
    assert unknown.status_code == 401  # past the gate, to the handler's own answer (no token here)
    assert listing.status_code == 503 and listing.json()["type"] == "https://jatra.dev/problems/overloaded"
