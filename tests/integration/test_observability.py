"""One search yields one trace (HTTP, Redis and Postgres spans), RED metrics, ECS logs with its trace id."""

from __future__ import annotations

import json
import uuid

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind
from redis.asyncio import Redis

from jatra.catalog.cache import SearchCache
from tests.fixtures.app import EcsLines
from tests.integration.helpers import a_journey, sample, travel_day

pytestmark = pytest.mark.integration


async def test_a_search_is_traced_measured_and_logged(
    client: AsyncTestClient[Litestar], redis: Redis, spans: InMemorySpanExporter, ecs_logs: EcsLines
) -> None:
    day = travel_day(5)
    await SearchCache(redis, 60).invalidate([day], "test")  # force a miss: db + redis
    labels = {"path": "/api/v1/journeys", "status_code": "200", "service": "catalog", "method": "GET"}
    before = sample((await client.get("/metrics")).text, "jatra_http_requests_total", **labels)
    spans.clear()

    response = await client.get(
        "/api/v1/journeys", params={"from": "DA", "to": "SYT", "date": day.isoformat()}
    )
    assert response.status_code == 200

    finished = spans.get_finished_spans()
    server = [s for s in finished if s.kind == SpanKind.SERVER]
    assert len(server) == 1
    root = server[0]
    assert root.name == "GET /api/v1/journeys"  # the route template, never the raw path
    assert root.attributes is not None and root.attributes["http.route"] == "/api/v1/journeys"
    trace_id = root.context.trace_id
    in_trace = [s for s in finished if s.context.trace_id == trace_id]
    systems = {
        (s.attributes or {}).get("db.system") or (s.attributes or {}).get("db.system.name") for s in in_trace
    }
    assert "redis" in systems, [s.name for s in in_trace]
    assert "postgresql" in systems, [s.name for s in in_trace]
    assert all(s.parent is not None for s in in_trace if s is not root)

    after = sample((await client.get("/metrics")).text, "jatra_http_requests_total", **labels)
    assert after == before + 1
    exposition = (await client.get("/metrics", headers={"accept": "application/openmetrics-text"})).text
    assert f'trace_id="{trace_id:032x}"' in exposition  # the latency exemplar links to this very trace

    mine = [line for line in ecs_logs.lines if line.get("trace", {}).get("id") == f"{trace_id:032x}"]
    messages = {line["message"] for line in mine}
    assert {"http.request", "catalog.search.computed"} <= messages
    [access] = [line for line in mine if line["message"] == "http.request"]  # one event per request
    assert access["http"]["request"]["method"] == "GET" and access["http"]["response"]["status_code"] == 200
    assert access["url"]["path"] == "/api/v1/journeys" and "from=DA" in access["url"]["query"]
    assert access["http"]["route"] == "/api/v1/journeys"
    assert access["event"]["duration"] > 0
    for line in mine:
        assert line["service"]["name"] == "jatra-api"
        assert line["event"]["dataset"] == "jatra.api"
        assert line["span"]["id"] and line["log.level"] and line["@timestamp"]
        assert "body" not in line


async def test_the_access_event_names_the_route_template(
    client: AsyncTestClient[Litestar], ecs_logs: EcsLines
) -> None:
    journey = await a_journey(client)
    assert (
        await client.get(f"/api/v1/journeys/{journey}/seats", params={"from": "DA", "to": "SYT"})
    ).is_success
    [access] = [
        line
        for line in ecs_logs.lines
        if line["message"] == "http.request"
        and line.get("url", {}).get("path") == f"/api/v1/journeys/{journey}/seats"
    ]
    assert access["http"]["route"] == "/api/v1/journeys/{journey_id}/seats"  # bounded, for aggregations
    assert access["http"]["response"]["status_code"] == 200


def _keys(event: object) -> set[str]:
    if isinstance(event, dict):
        return set(event) | {k for v in event.values() for k in _keys(v)}
    return set()


async def test_the_access_event_has_no_body_headers_or_cookies(
    client: AsyncTestClient[Litestar], ecs_logs: EcsLines
) -> None:
    marker = uuid.uuid4().hex
    response = await client.post(
        "/api/v1/tickets/verify",
        json={"qr": f"BODY-{marker}"},
        headers={
            "Authorization": f"Bearer TOKEN-{marker}",
            "Cookie": f"session=COOKIE-{marker}",
            "X-Forwarded-For": "203.0.113.7",
            "X-Anything": f"HEADER-{marker}",
        },
    )
    assert response.status_code == 200
    [access] = [
        line for line in ecs_logs.lines
        if line["message"] == "http.request" and line.get("url", {}).get("path") == "/api/v1/tickets/verify"
    ]  # fmt: skip
    assert marker not in json.dumps(access)  # neither the body, nor a header, nor a cookie
    assert not {"body", "headers", "cookies", "cookie", "authorization"} & {k.lower() for k in _keys(access)}
