"""Processes that come back: supervisord restarts every Jatra process killed with SIGKILL during traffic,
counts it, and no accepted booking is left unfinished; a released backlog does not starve the API."""

from __future__ import annotations

import asyncio
import datetime as dt
import itertools
import os
import signal
import time
import uuid
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import text

from jatra.infra.db import create_engine
from jatra.rush.invariants import CHECKS
from jatra.settings import Settings
from jatra.stack.manager import Running, Stack
from jatra.stack.ports import api_replica
from jatra.stack.stores import RabbitMQ
from jatra.stack.supervisor import restarts
from tests.fixtures.accounts import MakePassengers, Passenger
from tests.fixtures.provider import set_faults
from tests.integration.helpers import eventually, sample
from tests.integration.payflow import book, final_state

pytestmark = pytest.mark.integration
#: every supervised process, workers first; api-1 last (the traffic goes through the shared API port)
KILLED = [
    "outbox",
    "payments",
    "notifications",
    "reconciler",
    "reaper",
    "timetable",
    "payment-provider",
    "api-1",
]


def running(stack: Stack, name: str) -> Running:
    [found] = [r for r in stack.status() if r.name == name]
    return found


async def until(check: Callable[[], bool], within_s: float, what: str) -> None:
    deadline = time.monotonic() + within_s
    while not check():
        assert time.monotonic() < deadline, f"not within {within_s}s: {what}"
        await asyncio.sleep(0.2)


async def captured_without_ticket(settings: Settings, since: dt.datetime) -> int:
    engine = create_engine(settings, admin=True)
    async with engine.connect() as conn:
        query = text(CHECKS["captured_without_confirmed"])
        found = (await conn.execute(query, {"since": since})).scalar_one()
    await engine.dispose()
    return int(found)


async def unfinished_since(settings: Settings, since: dt.datetime) -> int:
    engine = create_engine(settings, admin=True)
    async with engine.connect() as conn:
        query = (
            "SELECT count(*) FROM bookings WHERE created_at >= :since "
            "AND status IN ('PAYMENT_PENDING', 'PAYMENT_PROCESSING')"
        )
        found = (await conn.execute(text(query), {"since": since})).scalar_one()
    await engine.dispose()
    return int(found)


@pytest.mark.timeout(900)  # a booking left for the reconciler ends only after the hold's TTL (5 minutes)
async def test_every_process_killed_during_traffic_comes_back_and_every_booking_ends(
    jatra_processes_running: Stack, make_passengers: MakePassengers, settings: Settings
) -> None:
    stack = jatra_processes_running
    await set_faults(settings, outage=False, decline_rate=0.0, latency_ms=0, latency_after_capture_ms=0)
    riders = await make_passengers(30)
    counted_before = restarts(stack.ctx)
    since = dt.datetime.now(dt.UTC)
    accepted: list[tuple[Passenger, str]] = []
    failed: Counter[str] = Counter()
    stop = asyncio.Event()
    base = f"http://127.0.0.1:{settings.ports.api}"

    async def traffic(riders: list[Passenger]) -> None:
        async with httpx.AsyncClient(base_url=base, timeout=15) as http:
            for who in itertools.cycle(riders):
                if stop.is_set():
                    return
                try:
                    accepted.append((who, (await book(http, who))["booking_id"]))
                except (httpx.HTTPError, AssertionError, ValueError) as exc:  # a killed replica cuts answers
                    failed[type(exc).__name__] += 1
                    await asyncio.sleep(0.1)

    loops = [asyncio.create_task(traffic(riders[i::2])) for i in range(2)]
    try:
        for name in KILLED:
            old = running(stack, name).pids[0]
            os.kill(old, signal.SIGKILL)

            def back(name: str = name, old: int = old) -> bool:
                now = running(stack, name)
                return now.ready and bool(now.pids) and now.pids[0] != old

            await until(back, 60, f"{name} restarted by supervisord")
    finally:
        stop.set()
        await asyncio.gather(*loops)
    assert len(accepted) >= 20, (len(accepted), failed)

    # A charge in flight when the provider is killed may leave its outcome unknown to the worker (the
    # provider took the request and went silent): such a booking stays in payment until the reconciler
    # asks the provider, once the hold's TTL has passed (a clean CI run met one). So wait that long.
    within = settings.hold_ttl_s + 3 * settings.reconcile_interval_s + 30
    # Pollers a few at a time: the traffic loops can book several hundred during the kills (923 in one
    # CI run), and as many pollers on one client, each asking again every 0.1 s, starve its connection
    # pool (requests waited past their timeout, the server answered 408s) and then the API itself.
    pollers = asyncio.Semaphore(32)

    async def settled(http: httpx.AsyncClient, who: Passenger, booking_id: str) -> dict[str, Any]:
        async with pollers:
            return await final_state(http, who, booking_id, within_s=within)

    async with httpx.AsyncClient(base_url=base, timeout=15) as http:
        ends = await asyncio.gather(*(settled(http, who, b) for who, b in accepted))
    outcomes = Counter(e["status"] for e in ends)
    assert set(outcomes) <= {"CONFIRMED", "PAYMENT_FAILED"} and outcomes["CONFIRMED"] >= len(accepted) * 0.9
    # a payment failed only because the provider was down for longer than the retry budget, or because
    # the reconciler found it never reached the provider
    unpaid = ("payment provider unavailable", "payment never reached the provider")
    for end in (e for e in ends if e["status"] == "PAYMENT_FAILED"):
        assert any(reason in end["reason"] for reason in unpaid), end

    # and those whose 202 was lost with a killed replica's connection are final too (within the same bound)
    async def all_final() -> bool:
        return await unfinished_since(settings, since) == 0

    await eventually(all_final, within, "every booking made during the kills final")

    # no money kept without a ticket: a charge that landed after its booking failed (a duplicate delivery's,
    # or one in flight when the failure was decided) is refunded through the outbox, and a key never
    # charged was voided before its booking failed
    async def nothing_captured_without_a_ticket() -> bool:
        return await captured_without_ticket(settings, since) == 0

    await eventually(nothing_captured_without_a_ticket, 60, "every capture without a ticket refunded")
    counted = restarts(stack.ctx)
    assert all(counted[name] >= counted_before.get(name, 0) + 1 for name in KILLED), counted
    async with httpx.AsyncClient() as http:
        exposed = (await http.get(f"http://127.0.0.1:{settings.ports.supervisor_events}/metrics")).text
    for name in KILLED:
        assert sample(exposed, "jatra_process_restarts_total", process=name) == counted[name]


async def test_a_released_backlog_does_not_starve_the_api(
    jatra_processes_running: Stack, make_passengers: MakePassengers, settings: Settings
) -> None:
    """The broker comes back to a backlog; while the workers drain it, the API answers every request
    (the issue this closes saw 503s: the workers took the database connections)."""
    stack = jatra_processes_running
    await set_faults(settings, outage=False, decline_rate=0.0, latency_ms=0, latency_after_capture_ms=0)
    riders = await make_passengers(60)
    base = f"http://127.0.0.1:{settings.ports.api}"
    # 60 passengers booking at once is past admission control's limits: `book` comes back when told to
    async with httpx.AsyncClient(base_url=base, timeout=30) as http:
        stack.down(["rabbitmq"])
        try:
            backlog = await asyncio.gather(*(book(http, who, key=str(uuid.uuid4())) for who in riders))
        finally:
            stack.up([RabbitMQ()])
        statuses: Counter[int] = Counter()
        end = time.monotonic() + 10
        while time.monotonic() < end:  # readers while the backlog drains
            pairs = list(zip(riders, backlog, strict=True))[:16]
            answers = await asyncio.gather(
                *(http.get(f"/api/v1/bookings/{b['booking_id']}", headers=who.headers) for who, b in pairs)
            )
            statuses.update(a.status_code for a in answers)
        ends = await asyncio.gather(
            *(
                final_state(http, who, b["booking_id"], within_s=120)
                for who, b in zip(riders, backlog, strict=True)
            )
        )
    assert set(statuses) == {200}, statuses
    assert Counter(e["status"] for e in ends) == {"CONFIRMED": len(riders)}


async def test_pgbouncer_that_dies_comes_back_and_the_api_reconnects(
    jatra_processes_running: Stack, make_passengers: MakePassengers, settings: Settings
) -> None:
    """Debian's PgBouncer 1.18 can exit on a cancel-request race (pgbouncer#801): the local stack runs it
    under a respawner, as a managed pooler comes back by itself. Kill it outright and a booking still goes
    through once it is back."""
    pidfile = jatra_processes_running.ctx.conf("pgbouncer") / "pgbouncer.pid"
    before = int(pidfile.read_text().split()[0])
    os.kill(before, signal.SIGKILL)
    await until(lambda: _new_pid(pidfile, before) and running(jatra_processes_running, "pgbouncer").ready,
                30, "a new PgBouncer answering")  # fmt: skip
    [rider] = await make_passengers(1)
    # connections pooled before the kill are dead: a request may meet one (a 503 that says retry), and the
    # pool replaces them. Each replica, on its own port, has two pools (psycopg for the outcome read, the ORM
    # engine for the rest), and both must come back to answering from the database.
    healthy = [(404, 200)] * 3  # no such booking (psycopg); an empty list of bookings (ORM)
    for n in range(1, settings.api_replicas + 1):
        replica = f"http://127.0.0.1:{settings.ports.app(api_replica(n))}"
        async with httpx.AsyncClient(base_url=replica, timeout=30) as http:
            answers: list[tuple[int, int]] = []
            for _ in range(40):
                outcome = await http.get(f"/api/v1/bookings/{uuid.uuid4()}", headers=rider.headers)
                assert outcome.status_code in (404, 503), outcome.text
                listing = await http.get("/api/v1/bookings", headers=rider.headers)
                assert listing.status_code in (200, 503), listing.text
                answers.append((outcome.status_code, listing.status_code))
                if answers[-3:] == healthy:
                    break
                await asyncio.sleep(0.25)
            assert answers[-3:] == healthy, (replica, answers)
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{settings.ports.api}", timeout=30) as http:
        booked = await book(http, rider)
    assert booked["status"] == "PAYMENT_PENDING"


def _new_pid(pidfile: Path, old: int) -> bool:
    try:
        return int(pidfile.read_text().split()[0]) != old
    except (OSError, ValueError, IndexError):
        return False
