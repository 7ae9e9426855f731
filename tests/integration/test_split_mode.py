"""Split mode, black box: one process per HTTP service (`jatra serve auth` ...) behind the real nginx gateway.

The split services and the gateway run next to the session stack's all-in-one API, on their own ports, and
share its data servers, workers, supervisord and Prometheus (`jatra up --split` runs the same processes and
the same gateway, which then also takes the API port). Every request below goes through nginx.
"""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import json
import math
import re
import secrets
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor

from jatra.gateway.routes import SERVICES
from jatra.observability.traces import spans_of
from jatra.settings import Settings
from jatra.stack.apps import service_processes
from jatra.stack.gateway import Gateway
from jatra.stack.manager import Stack
from tests.fixtures.accounts import Passenger
from tests.fixtures.provider import set_faults
from tests.integration.helpers import eventually
from tests.integration.payflow import RIDER, final_state, hold_for
from tests.integration.test_auth import login, new_phone

pytestmark = [pytest.mark.integration, pytest.mark.slow]
PROBLEM = "application/problem+json"
#: a phone number in a query: the gateway's logs must not keep it
PHONE = "01712345678"


@pytest.fixture(scope="module")
def split_mode(jatra_processes_running: Stack) -> Iterator[Stack]:
    """The four services as supervisord programs and nginx in front of them; stopped after this module."""
    stack = jatra_processes_running
    stack.up(service_processes(), parallel=True)
    stack.up([Gateway()])
    yield stack
    stack.down([Gateway.name, *SERVICES], retire=True)  # and Prometheus stops scraping them


@pytest.fixture
async def gateway(split_mode: Stack, settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{settings.ports.gateway}", timeout=30) as http:
        # a client from outside: once a test in this session has set up tracing, httpx is instrumented in this
        # process and would replace the traceparent the tests send with one of its own
        HTTPXClientInstrumentor.uninstrument_client(http)
        yield http


def access_log(settings: Settings) -> list[dict[str, Any]]:
    """The gateway's access log, parsed: every line must be one JSON object."""
    path = Path(settings.state_dir) / "log" / "gateway.log"
    return [json.loads(line) for line in path.read_text().splitlines() if line]


async def logged(settings: Settings, request_id: str, n: int = 1) -> list[dict[str, Any]]:
    """The gateway's access-log lines of a request id, once there are ``n`` (nginx logs after answering)."""
    lines: list[dict[str, Any]] = []

    async def there() -> bool:
        nonlocal lines
        lines = [e for e in access_log(settings) if e["http"]["request"]["id"] == request_id]
        return len(lines) >= n

    await eventually(there, 10, f"{n} gateway log lines of request {request_id}")
    return lines


def passenger_of(tokens: dict[str, str], phone: str) -> Passenger:
    """A passenger signed in through the gateway (the user id is the access token's subject)."""
    claims = tokens["access_token"].split(".")[1]
    subject = json.loads(base64.urlsafe_b64decode(claims + "=" * (-len(claims) % 4)))["sub"]
    return Passenger(uuid.UUID(subject), phone, tokens["access_token"])


def traceparent() -> tuple[str, str, str]:
    trace_id, parent_id = secrets.token_hex(16), secrets.token_hex(8)
    return f"00-{trace_id}-{parent_id}-01", trace_id, parent_id


async def test_a_passenger_books_through_the_gateway_in_split_mode(
    gateway: httpx.AsyncClient, settings: Settings
) -> None:
    """Sign in with an OTP, search, hold, book, see it confirmed and get the ticket: every step through
    nginx, each answered by the process of its own service."""
    await set_faults(settings, outage=False, failure_rate=0.0, timeout_rate=0.0, decline_rate=0.0,
                     latency_ms=0, latency_after_capture_ms=0)  # fmt: skip
    flow = f"split-{uuid.uuid4().hex}"
    gateway.headers["X-Request-ID"] = flow
    phone = new_phone()
    rider = passenger_of(await login(gateway, settings, phone), phone)  # type: ignore[arg-type]

    hold = await hold_for(gateway, rider)  # search (catalog), seat map and hold (seats)
    body = {"hold_id": hold["hold_id"], "passengers": [RIDER], "payment_method": "bkash"}
    headers = {**rider.headers, "Idempotency-Key": str(uuid.uuid4())}
    booked = await gateway.post("/api/v1/bookings", json=body, headers=headers)
    assert booked.status_code == 202, booked.text
    booking_id = booked.json()["booking_id"]
    done = await final_state(gateway, rider, booking_id)
    assert done["status"] == "CONFIRMED" and done["ticket_number"].startswith("JT"), done
    ticket = await gateway.get(f"/api/v1/bookings/{booking_id}/ticket.pdf", headers=rider.headers)
    assert ticket.status_code == 200 and ticket.headers["content-type"] == "application/pdf"
    assert ticket.content.startswith(b"%PDF")

    # nginx sent each step to its own service's process, never to the all-in-one API
    lines = await logged(settings, flow, n=8)
    ports = {s: f"127.0.0.1:{settings.ports.app(s)}" for s in SERVICES}
    served = {(e["jatra"]["gateway"]["service"], e["jatra"]["gateway"]["upstream"]) for e in lines}
    assert {service for service, _ in served} == set(SERVICES), served
    assert all(upstream == ports[service] for service, upstream in served), served
    assert ("bookings", "/api/v1/bookings") in {
        (e["jatra"]["gateway"]["service"], e["url"]["path"]) for e in lines
    }


async def test_the_request_id_is_passed_on_returned_and_made_when_absent(
    gateway: httpx.AsyncClient, settings: Settings
) -> None:
    mine = f"req-{uuid.uuid4().hex}"
    response = await gateway.get("/api/v1/stations", headers={"X-Request-ID": mine})
    assert response.status_code == 200 and response.headers["x-request-id"] == mine

    # the catalog process received it: its own access event carries the same id
    catalog_log = Path(settings.state_dir) / "log" / "catalog.log"

    async def catalog_logged() -> bool:
        return any(mine in line and '"http.request"' in line for line in catalog_log.read_text().splitlines())

    await eventually(catalog_logged, 10, "the catalog's access event with the gateway's request id")
    [event] = [json.loads(line) for line in catalog_log.read_text().splitlines() if mine in line]
    assert event["http"]["request"]["id"] == mine and event["url"]["path"] == "/api/v1/stations"

    made = (await gateway.get("/api/v1/stations")).headers["x-request-id"]
    assert re.fullmatch(r"[0-9a-f]{32}", made), made
    # a request id that is not sane (too long, odd characters) is replaced, not passed on
    odd = (await gateway.get("/api/v1/stations", headers={"X-Request-ID": "a b;" * 30})).headers[
        "x-request-id"
    ]
    assert re.fullmatch(r"[0-9a-f]{32}", odd), odd
    assert made != odd
    [line] = await logged(settings, made)
    assert line["http"]["response"]["status_code"] == 200 and line["service"]["name"] == "jatra-gateway"


@pytest.mark.parametrize(
    ("path", "query", "leak"),
    [
        ("/api/v1/stations", "email=rahim%40example.com&x=1", "rahim"),
        ("/api/v1/stations", "phone=%2B8801712345678", "1712345678"),
        ("/api/v1/stations", "to=01712345678", "1712345678"),
        ("/api/v1/stations", "otp=483920", "483920"),
        ("/api/v1/stations", "q=tel%3A01712345678", "1712345678"),
        # a name has no pattern: a parameter named like personal data (as the app's scrub_query finds it)
        ("/api/v1/stations", "from=DA&passenger=Rahim+Uddin", "Rahim"),
        ("/api/v1/stations", "passengers%5B0%5D%5Bname%5D=Karim", "Karim"),
        ("/api/v1/stations", "from=DA%26passenger%3DRahim", "Rahim"),  # hidden in a value, encoded
        ("/api/v1/stations", "user%5Fname=Karim", "Karim"),  # an encoded "_" in the name
        ("/api/v1/stations%3Fpassenger=Rahim", "", "Rahim"),  # nginx's $uri is decoded: a query in the path
        ("/api/v1/stations", "to=" + "a" * 6000 + "%40example.com", "example.com"),
        ("/api/v1/stations/rahim@example.com", "", "rahim"),
        # encoded twice ("%25" is an encoded "%"); nginx decodes a path once, a query never
        ("/api/v1/stations", "email=rahim%2540example.com", "rahim"),
        ("/api/v1/stations", "phone=%252B8801712345678", "1712345678"),
        ("/api/v1/stations/rahim%252540example.com", "", "rahim"),
    ],
)
async def test_the_gateway_logs_no_personal_data_from_a_path_or_query(
    gateway: httpx.AsyncClient, settings: Settings, path: str, query: str, leak: str
) -> None:
    """nginx's lines are shipped as written, so it redacts them itself: the whole field at a match."""
    request_id = f"pii-{uuid.uuid4().hex}"
    await gateway.get(f"{path}?{query}" if query else path, headers={"X-Request-ID": request_id})
    [line] = await logged(settings, request_id)
    assert leak not in json.dumps(line)
    redacted = line["url"]["query"] if query else line["url"]["path"]
    assert redacted == "[redacted]", line["url"]


async def test_the_gateway_logs_no_phone_number_given_as_a_request_id(
    gateway: httpx.AsyncClient, settings: Settings
) -> None:
    marker = uuid.uuid4().hex
    response = await gateway.get(f"/api/v1/stations?m={marker}", headers={"X-Request-ID": "01712345678"})
    assert response.headers["x-request-id"] == "01712345678"  # passed on and returned as it was

    async def there() -> bool:
        return any(marker in json.dumps(line) for line in access_log(settings))

    await eventually(there, 10, "the gateway's line of the request")
    [line] = [line for line in access_log(settings) if marker in json.dumps(line)]
    assert line["http"]["request"]["id"] == "[redacted]" and "1712345678" not in json.dumps(line)


async def test_the_gateway_logs_an_ordinary_path_and_query_as_they_are(
    gateway: httpx.AsyncClient, settings: Settings
) -> None:
    request_id = f"plain-{uuid.uuid4().hex}"
    query = "from=DA&to=CGP&date=2027-06-28"
    await gateway.get(f"/api/v1/journeys?{query}", headers={"X-Request-ID": request_id})
    [line] = await logged(settings, request_id)
    assert line["url"] == {"path": "/api/v1/journeys", "query": query}
    assert line["message"].startswith("GET /api/v1/journeys ")


async def test_a_clients_trace_continues_in_the_services_spans(
    gateway: httpx.AsyncClient, settings: Settings
) -> None:
    header, trace_id, parent_id = traceparent()
    request_id = f"trace-{uuid.uuid4().hex}"
    response = await gateway.get(
        "/api/v1/stations", headers={"traceparent": header, "X-Request-ID": request_id}
    )
    assert response.status_code == 200
    traces = Path(settings.trace_dir or Path(settings.state_dir) / "traces")
    found: list[Any] = []

    async def exported() -> bool:  # spans leave each process in batches, every few seconds
        nonlocal found
        found = await asyncio.to_thread(spans_of, trace_id, traces)
        return any(s.parent_id == parent_id for s in found)

    await eventually(exported, 30, f"the catalog's spans of trace {trace_id}")
    [server] = [s for s in found if s.parent_id == parent_id]
    assert server.service == "jatra-catalog" and server.name == "GET /api/v1/stations", server
    assert server.kind == 2  # SERVER: the request's span, the client's span its parent

    # ... and the gateway's access log line is an ECS event in the same trace, with the same request id
    [line] = await logged(settings, request_id)
    assert line["trace"]["id"] == trace_id and line["ecs.version"]
    assert line["event"]["dataset"] == "jatra.gateway" and line["http"]["request"]["method"] == "GET"
    assert line["url"]["path"] == "/api/v1/stations" and line["jatra"]["gateway"]["service"] == "catalog"
    assert dt.datetime.fromisoformat(line["@timestamp"]).tzinfo is not None
    assert "client" not in line and "source" not in line  # no client address: personal data


async def test_a_client_over_the_edge_limit_gets_429_problems_and_others_do_not(
    gateway: httpx.AsyncClient, settings: Settings
) -> None:
    """The login endpoints allow a client 5 requests/s with a burst of 10; a client that sends 40 at once
    gets 429s from nginx, before they reach the auth service, while another client is served."""
    transport = httpx.AsyncHTTPTransport(local_address="127.0.0.2")  # loopback has every 127.x address
    async with httpx.AsyncClient(base_url=str(gateway.base_url), transport=transport, timeout=30) as greedy:
        started = time.monotonic()
        answers = await asyncio.gather(*(greedy.get("/api/v1/auth/no-such-endpoint") for _ in range(40)))
        elapsed = time.monotonic() - started
        served_meanwhile = await gateway.get("/api/v1/auth/no-such-endpoint")
    statuses = [a.status_code for a in answers]
    # 404: the auth service's. The burst, and 5 more a second for as long as the 40 took to arrive (on a
    # loaded machine they may take longer than the 0.2 s a sixth would need)
    allowed = 11 + math.ceil(5 * elapsed)
    assert 0 < statuses.count(404) <= allowed and statuses.count(429) >= max(1, 40 - allowed), (
        statuses,
        elapsed,
    )
    limited = next(a for a in answers if a.status_code == 429)
    assert limited.headers["content-type"] == PROBLEM and int(limited.headers["retry-after"]) >= 1
    problem = limited.json()
    assert problem["status"] == 429 and problem["type"].endswith("/rate-limited"), problem
    assert re.fullmatch(r"[0-9a-f]{32}", limited.headers["x-request-id"])
    assert served_meanwhile.status_code == 404  # another client's budget is its own


async def test_a_service_that_is_down_is_a_503_problem_until_it_is_back(
    split_mode: Stack, gateway: httpx.AsyncClient, settings: Settings
) -> None:
    [catalog] = [p for p in service_processes() if p.name == "catalog"]
    split_mode.down([catalog.name])  # supervisord stops the program (and does not bring it back)
    try:
        down = await gateway.get("/api/v1/stations", params={"to": PHONE})
        assert down.status_code == 503 and down.headers["content-type"] == PROBLEM, down.text
        assert int(down.headers["retry-after"]) >= 1
        problem = down.json()
        assert problem["status"] == 503 and problem["type"].endswith("/dependency-unavailable"), problem
        assert problem["instance"] == "/api/v1/stations"
        # the other services answer all the while
        seats = await gateway.post("/api/v1/holds", json={})
        assert seats.status_code == 401 and seats.headers["content-type"] == PROBLEM
        [line] = await logged(settings, down.headers["x-request-id"])
        assert (
            line["http"]["response"]["status_code"] == 503
            and line["jatra"]["gateway"]["service"] == "catalog"
        )
        # the refused connection is told by the access line, redacted; nginx's error log, which would
        # write the client's address and the request line as sent, keeps only nginx's own failures
        assert "502" in line["jatra"]["gateway"]["upstream_status"], line
        assert line["url"]["query"] == "[redacted]" and PHONE[1:] not in json.dumps(line)
        errors = (Path(settings.state_dir) / "log" / "gateway-error.log").read_text()
        assert PHONE[1:] not in errors and "client:" not in errors, errors
    finally:
        split_mode.up([catalog])
    assert (await gateway.get("/api/v1/stations")).status_code == 200


async def test_prometheus_scrapes_each_split_service_while_it_runs(
    split_mode: Stack, gateway: httpx.AsyncClient, settings: Settings
) -> None:
    """Each service's own /metrics (never the gateway's port) is a target, up, with its process label."""
    wanted = {f"127.0.0.1:{settings.ports.app(s)}": s for s in SERVICES}
    prometheus = f"http://127.0.0.1:{settings.ports.prometheus}"
    up: dict[str, str] = {}

    async def scraped() -> bool:
        nonlocal up
        async with httpx.AsyncClient(base_url=prometheus, timeout=5) as prom:
            targets = (await prom.get("/api/v1/targets")).json()["data"]["activeTargets"]
            built = (await prom.get("/api/v1/query", params={"query": "jatra_build_info"})).json()["data"]
        up = {
            t["scrapeUrl"].removeprefix("http://").removesuffix("/metrics"): t["labels"]["process"]
            for t in targets
            if t["labels"]["job"] == "jatra" and t["health"] == "up"
        }
        processes = {r["metric"]["process"] for r in built["result"]}
        return set(wanted.items()) <= set(up.items()) and set(SERVICES) <= processes

    await eventually(scraped, 40, "Prometheus scraping the four split services")  # a scrape every 5 s
    assert f"127.0.0.1:{settings.ports.gateway}" not in up
