"""A booking's outcome without a polling loop: `GET /bookings/{id}?wait=N` answers when the payment worker
settles the booking (it rings a Redis doorbell), or after N seconds, and holds no database connection
while it waits. Run against the stack's own API replicas over HTTP, with the payment worker paused so a
booking stays PAYMENT_PENDING for exactly as long as the test wants."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator

import httpx
import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from jatra.payments.settle import ticket_number
from jatra.settings import Settings
from jatra.stack.apps import jatra_processes
from jatra.stack.manager import Stack
from tests.fixtures.accounts import Passenger
from tests.integration.helpers import eventually
from tests.integration.payflow import book, worker_metric

pytestmark = [pytest.mark.integration, pytest.mark.slow]
Client = AsyncTestClient[Litestar]
IN_PAYMENT = {"PAYMENT_PENDING", "PAYMENT_PROCESSING"}


@pytest.fixture
def payments_paused(jatra_processes_running: Stack) -> Iterator[Stack]:
    """The payment worker stopped (bookings wait in its queue), started again after the test."""
    stack = jatra_processes_running
    stack.down(["payments"])
    yield stack
    if not any(r.name == "payments" for r in stack.status()):
        stack.up([p for p in jatra_processes(stack.ctx.api_replicas) if p.name == "payments"])


def start_payments(stack: Stack) -> None:
    stack.up([p for p in jatra_processes(stack.ctx.api_replicas) if p.name == "payments"])


async def api_metric(settings: Settings, line_prefix: str) -> float:
    """A metric summed over the API replicas (each serves its own /metrics on its own port)."""
    replicas = [f"api-{n}" for n in range(1, settings.api_replicas + 1)]
    return sum([await worker_metric(settings, r, line_prefix) for r in replicas])


async def test_many_long_polls_wait_without_connections_and_answer_when_the_payment_settles(
    payments_paused: Stack, client: Client, passenger: Passenger, settings: Settings
) -> None:
    booked = await book(client, passenger)
    url = f"/api/v1/bookings/{booked['booking_id']}"
    rung_before = await api_metric(settings, 'jatra_booking_waits_total{outcome="rung"}')
    # More waiters than the API replicas have database connections in all (pool + overflow each): if a
    # waiter kept its connection, the rest would queue for one and get 503 after the 5 s pool timeout.
    waiters = 3 * settings.api_replicas * 2 * settings.database_pool_size
    async with httpx.AsyncClient(
        base_url=f"http://127.0.0.1:{settings.ports.api}",
        headers=passenger.headers,
        timeout=60,
        limits=httpx.Limits(max_connections=waiters + 10),
    ) as http:
        now = await http.get(url)  # no wait: the state as it is
        assert now.status_code == 200 and now.json()["status"] in IN_PAYMENT

        polls = [asyncio.create_task(http.get(url, params={"wait": 20})) for _ in range(waiters)]

        async def all_waiting() -> bool:
            return await api_metric(settings, "jatra_booking_waiting ") >= waiters

        await eventually(all_waiting, 15, f"{waiters} long polls waiting at once")
        meanwhile = await http.get(url)  # the API still has connections for everyone else
        assert meanwhile.status_code == 200 and meanwhile.json()["status"] in IN_PAYMENT
        assert not any(p.done() for p in polls)  # nobody answered before the payment settled

        await asyncio.to_thread(start_payments, payments_paused)
        answers = await asyncio.gather(*polls)
    assert [a.status_code for a in answers] == [200] * waiters
    assert {a.json()["status"] for a in answers} == {"CONFIRMED"}
    # the answer comes from the worker's note (no second read), complete with the ticket number
    ticket = ticket_number(uuid.UUID(booked["booking_id"]))
    assert {a.json()["ticket_number"] for a in answers} == {ticket}
    # each one was woken by the worker's ring, not by its 20 s running out
    rung = await api_metric(settings, 'jatra_booking_waits_total{outcome="rung"}')
    assert rung - rung_before == waiters
    assert await api_metric(settings, "jatra_booking_waiting ") == 0


async def test_a_long_poll_answers_the_state_as_it_is_when_its_time_runs_out(
    payments_paused: Stack, client: Client, passenger: Passenger, settings: Settings
) -> None:
    booked = await book(client, passenger)
    before = await api_metric(settings, 'jatra_booking_waits_total{outcome="timeout"}')
    async with httpx.AsyncClient(
        base_url=f"http://127.0.0.1:{settings.ports.api}", headers=passenger.headers, timeout=30
    ) as http:
        answer = await http.get(f"/api/v1/bookings/{booked['booking_id']}", params={"wait": 1})
    assert answer.status_code == 200 and answer.json()["status"] in IN_PAYMENT
    assert await api_metric(settings, 'jatra_booking_waits_total{outcome="timeout"}') == before + 1


async def test_a_settled_booking_is_answered_at_once_and_the_wait_is_bounded(
    jatra_processes_running: Stack, client: Client, passenger: Passenger
) -> None:
    booked = await book(client, passenger)
    url = f"/api/v1/bookings/{booked['booking_id']}"
    settled = await client.get(url, params={"wait": 20}, headers=passenger.headers)
    assert settled.status_code == 200 and settled.json()["status"] == "CONFIRMED"
    for wrong in ("21", "-1", "soon"):
        refused = await client.get(url, params={"wait": wrong}, headers=passenger.headers)
        assert refused.status_code == 400, wrong
        assert refused.headers["content-type"].startswith("application/problem+json")
        assert "wait" in refused.text
