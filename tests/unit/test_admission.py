"""Admission control: new trips refused first, half-done ones later, long polls never; each refusal a
503 problem+json with Retry-After, counted and logged. A small app, requests really held in flight."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest
from litestar import Litestar, get
from prometheus_client import REGISTRY

from jatra.infra import admission
from jatra.infra.admission import CHOOSING, EXEMPT, NEW, AdmissionGate, AdmissionPlugin
from jatra.infra.backlog import STALE_S, PaymentBacklog
from tests.fixtures.logs import Logged


class Busy:
    """Endpoints that stay in flight until released."""

    def __init__(self) -> None:
        self.release = asyncio.Event()

    def app(self, new_limit: int, limit: int) -> tuple[Litestar, AdmissionGate]:
        release = self.release

        @get("/work")
        async def work() -> str:
            await release.wait()
            return "done"

        @get("/search", opt=NEW)
        async def search() -> str:
            return "found"

        @get("/seats", opt=CHOOSING)
        async def seats() -> str:
            return "chosen"

        @get("/wait", opt=EXEMPT)
        async def wait() -> str:
            await release.wait()
            return "settled"

        @get("/boom")
        async def boom() -> str:
            raise RuntimeError("handler failed")

        gate = AdmissionGate(new_limit, limit, retry_after_s=3, standing_s=0)
        return Litestar([work, search, seats, wait, boom], plugins=[AdmissionPlugin(gate)]), gate


def shed(phase: str, reason: str = "in_flight") -> float:
    labels = {"phase": phase, "reason": reason}
    return REGISTRY.get_sample_value("jatra_http_requests_shed_total", labels) or 0.0


async def until(check: Callable[[], bool]) -> None:
    for _ in range(1000):
        if check():
            return
        await asyncio.sleep(0.001)
    raise AssertionError("condition not reached")


@pytest.fixture
def busy() -> Busy:
    return Busy()


@pytest.fixture
async def gated(busy: Busy) -> AsyncIterator[tuple[httpx.AsyncClient, AdmissionGate]]:
    app, gate = busy.app(new_limit=1, limit=3)  # seat maps and holds: 2
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://jatra") as http:
        yield http, gate


def assert_overloaded(answer: httpx.Response, path: str) -> dict[str, Any]:
    assert answer.status_code == 503
    assert answer.headers["content-type"] == "application/problem+json"
    assert answer.headers["retry-after"] == "3"
    body: dict[str, Any] = answer.json()
    assert body["type"] == "https://jatra.dev/problems/overloaded"
    assert body["status"] == 503
    assert body["instance"] == path
    return body


async def test_new_trips_are_refused_first_then_choices_then_everything_but_long_polls(
    gated: tuple[httpx.AsyncClient, AdmissionGate], busy: Busy
) -> None:
    http, gate = gated
    before = {phase: shed(phase) for phase in ("new", "choosing", "continuing")}
    held = [asyncio.create_task(http.get("/work"))]
    await until(lambda: gate.in_flight == 1)

    body = assert_overloaded(await http.get("/search"), "/search")  # new trips: limit 1 reached
    assert "refuses new trips" in body["detail"]
    assert (await http.get("/seats")).status_code == 200  # a trip under way still chooses its seats
    held.append(asyncio.create_task(http.get("/work")))
    await until(lambda: gate.in_flight == 2)
    body = assert_overloaded(await http.get("/seats"), "/seats")  # choosing: limit 2
    assert "refuses new holds" in body["detail"]
    held.append(asyncio.create_task(http.get("/work")))  # a booking still gets in (limit 3)
    await until(lambda: gate.in_flight == 3)
    body = assert_overloaded(await http.get("/work"), "/work")
    assert "refuses requests" in body["detail"]
    polls = [
        asyncio.create_task(http.get("/wait")) for _ in range(5)
    ]  # long polls: neither counted nor refused
    await asyncio.sleep(0.05)
    assert gate.in_flight == 3
    assert {phase: shed(phase) - before[phase] for phase in before} == {
        "new": 1,
        "choosing": 1,
        "continuing": 1,
    }

    busy.release.set()
    answers = await asyncio.gather(*held, *polls)
    assert [a.status_code for a in answers] == [200] * 8
    assert gate.in_flight == 0
    assert (await http.get("/search")).status_code == 200


async def test_a_failing_handler_gives_its_slot_back(gated: tuple[httpx.AsyncClient, AdmissionGate]) -> None:
    http, gate = gated
    for _ in range(3):
        assert (await http.get("/boom")).status_code == 500
    assert gate.in_flight == 0
    assert (await http.get("/search")).status_code == 200


async def test_limits_of_zero_turn_the_gate_off(busy: Busy) -> None:
    app, gate = busy.app(new_limit=0, limit=0)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://jatra") as http:
        held = [asyncio.create_task(http.get("/work")) for _ in range(20)]
        await until(lambda: gate.in_flight == 20)
        assert (await http.get("/search")).status_code == 200
        busy.release.set()
        assert {a.status_code for a in await asyncio.gather(*held)} == {200}


async def test_new_limit_zero_follows_the_overall_limit(busy: Busy) -> None:
    app, gate = busy.app(new_limit=0, limit=1)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://jatra") as http:
        held = asyncio.create_task(http.get("/work"))
        await until(lambda: gate.in_flight == 1)
        assert_overloaded(await http.get("/search"), "/search")
        assert_overloaded(await http.get("/seats"), "/seats")
        busy.release.set()
        assert (await held).status_code == 200


async def test_refusals_are_logged_once_per_interval_with_their_count(
    gated: tuple[httpx.AsyncClient, AdmissionGate], busy: Busy, monkeypatch: pytest.MonkeyPatch
) -> None:
    http, gate = gated
    logged = Logged()
    monkeypatch.setattr(admission, "log", logged)
    held = asyncio.create_task(http.get("/work"))
    await until(lambda: gate.in_flight == 1)
    for _ in range(4):
        assert (await http.get("/search")).status_code == 503
    gate._log_due = 0.0  # the interval has passed
    assert (await http.get("/search")).status_code == 503
    events = [e for e in logged.events if e["event"] == "http.admission.shedding"]
    assert [(e["refused"], e["phase"], e["reason"], e["limit"], e["in_flight"]) for e in events] == [
        (1, "new", "in_flight", 1, 1),
        (4, "new", "in_flight", 1, 1),
    ]
    busy.release.set()
    await held


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_burst_is_let_through_a_standing_count_is_not() -> None:
    clock = Clock()
    gate = AdmissionGate(new_limit=2, limit=10, retry_after_s=1, standing_s=0.1, clock=clock)
    gate.in_flight = 2  # at the new-trip limit (6 for choices)
    assert not gate.refuses("new")  # first seen there: a burst, for now
    clock.now += 0.06
    assert not gate.refuses("new")
    clock.now += 0.06
    assert gate.refuses("new")  # there for 0.12 s: overload
    assert not gate.refuses("choosing") and not gate.refuses("continuing")

    gate.leave()  # under the limit again: the next time it is reached starts a new count
    gate.in_flight += 1
    assert not gate.refuses("new")
    clock.now += 0.12
    assert gate.refuses("new")

    gate.in_flight = 10
    assert gate.refuses("continuing")  # the overall limit is a hard cap, no grace
    assert not gate.refuses("choosing")  # first seen over its limit now
    clock.now += 0.12
    assert gate.refuses("choosing")


def test_new_trips_wait_while_payments_run_behind_the_rest_go_on() -> None:
    backlog = PaymentBacklog()
    gate = AdmissionGate(new_limit=8, limit=32, retry_after_s=1, backlog=backlog, payment_delay_s=10)
    assert gate.refuses("new") is None  # nothing read yet: no backlog
    backlog._delay_s, backlog._read_at = 12.0, time.monotonic()
    assert gate.refuses("new") == "payment_backlog"
    assert gate.refuses("choosing") is None and gate.refuses("continuing") is None  # trips under way go on
    backlog._delay_s = 9.0
    assert gate.refuses("new") is None
    backlog._delay_s, backlog._read_at = 12.0, time.monotonic() - STALE_S  # a reading that stopped coming
    assert backlog.delay_s == 0.0 and gate.refuses("new") is None
    off = AdmissionGate(new_limit=8, limit=32, retry_after_s=1, backlog=backlog, payment_delay_s=0)
    backlog._read_at = time.monotonic()
    assert off.refuses("new") is None  # not watched


async def test_a_trip_refused_for_the_backlog_says_why(busy: Busy) -> None:
    app, gate = busy.app(new_limit=8, limit=32)
    gate.payment_delay_s = 10
    gate.backlog._delay_s, gate.backlog._read_at = 42.4, time.monotonic()
    before = shed("new", "payment_backlog")
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://jatra") as http:
        body = assert_overloaded(await http.get("/search"), "/search")
        assert (await http.get("/seats")).status_code == 200
    assert "payments are running behind (the oldest booking has waited 42 s)" in body["detail"]
    assert shed("new", "payment_backlog") == before + 1
