"""Admission control in the real app: a busy process refuses a search with a 503 the route's metrics,
trace and access log all see, and still serves a booking's long poll and the health probes; new trips wait
while the oldest booking waits too long for its payment."""

from __future__ import annotations

import dataclasses
import datetime as dt
import uuid
from collections.abc import Iterator

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind
from sqlalchemy import func, update

from jatra.app import create_app
from jatra.db.bookings import Booking
from jatra.infra.admission import AdmissionGate, AdmissionPlugin
from jatra.infra.backlog import PaymentBacklog
from jatra.infra.db import create_engine, session_factory
from jatra.settings import Settings
from jatra.stack.manager import Stack
from tests.fixtures.accounts import Passenger
from tests.fixtures.app import EcsLines
from tests.integration.helpers import a_journey, eventually, sample, travel_day
from tests.integration.payflow import unpaid_booking

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


async def test_long_polls_and_probes_are_served_however_busy_the_process(
    client: AsyncTestClient[Litestar], gate: AdmissionGate
) -> None:
    gate.in_flight += gate.limits["continuing"]
    try:
        unknown = await client.get(f"/api/v1/bookings/{uuid.uuid4()}", params={"wait": 1})
        listing = await client.get("/api/v1/bookings")
        probes = [(await client.get(path)).status_code for path in ("/health", "/metrics")]
    finally:
        gate.in_flight -= gate.limits["continuing"]
    assert unknown.status_code == 401  # past the gate, to the handler's own answer (no token here)
    assert listing.status_code == 503 and listing.json()["type"] == "https://jatra.dev/problems/overloaded"
    assert probes == [200, 200]  # a busy pod must not look dead to its kubelet, nor go blind


async def test_new_trips_wait_while_the_oldest_booking_waits_for_payment(
    client: AsyncTestClient[Litestar],
    gate: AdmissionGate,
    passenger: Passenger,
    settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    engine = create_engine(settings, admin=True)
    sessions = session_factory(engine)
    # PAYMENT_PENDING whatever else runs: its payment request goes where no payment worker listens
    _, booking_id = await unpaid_booking(client, passenger, engine)
    try:
        async with sessions() as session:  # as if it had waited two minutes
            await session.execute(
                update(Booking)
                .where(Booking.id == booking_id)
                .values(updated_at=func.now() - dt.timedelta(seconds=120))
            )
            await session.commit()
        assert await gate.backlog.read(sessions) >= 120  # the oldest waiting (this one, or older)
        monkeypatch.setattr(gate, "payment_delay_s", 30.0)
        search = await client.get(
            "/api/v1/journeys", params={"from": "DA", "to": "SYT", "date": travel_day(5).isoformat()}
        )
        assert search.status_code == 503 and "payments are running behind" in search.json()["detail"]
        assert (await client.get(f"/api/v1/bookings/{booking_id}", headers=passenger.headers)).is_success

        async with sessions() as session:  # out of the backlog, for the tests after this one
            await session.execute(
                update(Booking)
                .where(Booking.id == booking_id)
                .values(status="EXPIRED", reason="ended by its test", updated_at=func.now())
            )
            await session.commit()
    finally:
        await engine.dispose()


async def test_an_app_watching_the_backlog_reads_it_every_second(stack: Stack, settings: Settings) -> None:
    watching = dataclasses.replace(settings, admission_payment_delay_s=30.0, database_via_pgbouncer=False)
    app = create_app(["catalog"], watching)
    backlog = app.plugins.get(AdmissionPlugin).gate.backlog
    async with AsyncTestClient(app=app) as client:
        await eventually(lambda: _read(backlog), within_s=5, what="the backlog read by the app's lifespan")
        metrics = (await client.get("/metrics")).text
        assert sample(metrics, "jatra_http_admission_payment_delay_seconds") == backlog.delay_s


async def _read(backlog: PaymentBacklog) -> bool:
    return backlog._read_at > 0
