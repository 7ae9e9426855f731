"""One booking is one trace, written locally as OTLP JSON by every process it crosses, and `jatra trace`
draws it from the HTTP request through Redis, Postgres and RabbitMQ to the workers."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time

import pytest

from jatra.settings import Settings
from jatra.stack.manager import Stack
from tests.fixtures.accounts import MakePassengers
from tests.integration.payflow import a_confirmed_booking

pytestmark = pytest.mark.integration
CROSSED = ("jatra-api", "jatra-outbox", "jatra-payments", "jatra-payment-provider", "jatra-notifications")


def jatra_trace(ident: str) -> str:
    command = [sys.executable, "-m", "jatra", "trace", ident]
    done = subprocess.run(command, capture_output=True, text=True, check=False, timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stdout


async def test_jatra_trace_draws_one_booking_across_every_process(
    jatra_processes_running: Stack, make_passengers: MakePassengers, settings: Settings
) -> None:
    booking_id = await a_confirmed_booking(settings, make_passengers)
    deadline = time.monotonic() + 60  # spans leave each process in batches, every few seconds
    while True:
        drawn = await asyncio.to_thread(jatra_trace, booking_id)
        if all(service in drawn for service in CROSSED) or time.monotonic() > deadline:
            break
        await asyncio.sleep(1)
    header = drawn.splitlines()[0]
    assert header.startswith("trace ") and "spans" in header, drawn
    for service in CROSSED:
        assert service in drawn, f"{service} missing from the trace:\n{drawn}"
    assert "POST /api/v1/bookings" in drawn  # the request that started it
    # Redis, Postgres and RabbitMQ spans (aio-pika names a publish "<exchange>,<routing key> send")
    for system in ("EVALSHA", "payment.requested send", "jatra.payments receive"):
        assert system.lower() in drawn.lower(), f"no {system} span:\n{drawn}"
    # the booking's one statement (the key's claim, the booking, its outbox row: jatra.infra.pg's span),
    # named after the function that does it (migration 0008)
    api_statements = [
        line for line in drawn.splitlines() if "jatra-api" in line and "jatra_accept_booking" in line
    ]
    assert len(api_statements) == 1, drawn
    assert "SELECT jatra_accept_booking" in api_statements[0], drawn
    # the payment worker's two statements (psycopg, jatra.infra.pg) are spans of the same trace
    worker_statements = [line for line in drawn.splitlines() if "jatra-payments" in line and "WITH" in line]
    assert len(worker_statements) == 2, drawn
    trace_id = header.split()[1].rstrip(":")
    assert jatra_trace(trace_id).splitlines()[0] == header  # the same trace, found by its id
