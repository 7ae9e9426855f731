"""/health and /ready, and what a failed dependency looks like to a client: 503 with Retry-After."""

from __future__ import annotations

import dataclasses
import secrets
import uuid

import pytest
from litestar.testing import AsyncTestClient
from redis.asyncio import Redis

from jatra.app import create_app
from jatra.settings import Settings
from tests.fixtures.accounts import Passenger
from tests.integration.helpers import travel_day

pytestmark = pytest.mark.integration


async def test_ready_checks_every_dependency(client: AsyncTestClient) -> None:  # type: ignore[type-arg]
    assert (await client.get("/health")).json()["status"] == "ok"
    response = await client.get("/ready")
    assert response.status_code == 200
    checks = response.json()["checks"]
    assert set(checks) == {"postgres", "redis", "rabbitmq"}
    assert all(c["ok"] for c in checks.values())


async def test_a_dead_dependency_makes_the_process_not_ready(settings: Settings) -> None:
    broken = dataclasses.replace(settings, redis_url="redis://127.0.0.1:1/0", dependency_timeout_s=0.3)
    async with AsyncTestClient(app=create_app(["all"], broken)) as client:
        response = await client.get("/ready")
        assert response.status_code == 503
        assert response.headers["retry-after"] == str(settings.retry_after_s)
        checks = response.json()["checks"]
        assert checks["redis"]["ok"] is False and checks["postgres"]["ok"] is True
        assert (await client.get("/health")).status_code == 200  # alive, just not ready


async def test_search_degrades_to_the_database_when_redis_is_down(settings: Settings) -> None:
    broken = dataclasses.replace(settings, redis_url="redis://127.0.0.1:1/0", dependency_timeout_s=0.3)
    async with AsyncTestClient(app=create_app(["all"], broken)) as client:
        params = {"from": "DA", "to": "CGP", "date": travel_day(1).isoformat()}
        response = await client.get("/api/v1/journeys", params=params)
        assert response.status_code == 200 and response.json()["journeys"]


async def test_a_dead_database_is_a_503_problem_with_retry_after(settings: Settings) -> None:
    broken = dataclasses.replace(settings, database_url="postgresql+asyncpg://jatra@127.0.0.1:1/jatra")
    async with AsyncTestClient(app=create_app(["all"], broken)) as client:
        params = {"from": "DA", "to": "CGP", "date": travel_day(6).isoformat()}
        response = await client.get("/api/v1/journeys", params=params)
        assert response.status_code == 503
        assert response.headers["retry-after"] == str(settings.retry_after_s)
        assert response.headers["content-type"].startswith("application/problem+json")
        assert response.json()["dependency"] == "postgres"


async def test_a_dead_database_under_the_one_exchange_statements_is_a_503_not_a_wait_for_nothing(
    settings: Settings, passenger: Passenger
) -> None:
    """The outcome's read goes through jatra.infra.pg, whose pool retries connecting in the background and
    only times its waiters out: an outage must still read as Postgres unavailable, not as overload."""
    broken = dataclasses.replace(settings, database_url="postgresql+asyncpg://jatra@127.0.0.1:1/jatra")
    async with AsyncTestClient(app=create_app(["all"], broken)) as client:
        response = await client.get(f"/api/v1/bookings/{uuid.uuid4()}", headers=passenger.headers)
        assert response.status_code == 503, response.text
        assert response.headers["retry-after"] == str(settings.retry_after_s)
        problem = response.json()
        assert problem["dependency"] == "postgres" and "overloaded" not in problem["detail"], problem


async def test_a_full_redis_refuses_with_a_503_not_a_500(
    client: AsyncTestClient,  # type: ignore[type-arg]
    redis: Redis,
) -> None:
    """Redis at maxmemory with noeviction (the local stack's policy) answers writes with OOM: that is a
    dependency refusing work, so the passenger is told to retry. (A hold still goes through: its script's
    first write frees memory, and Redis lets a script that has written finish, for atomicity.)"""
    phone = f"+88017{secrets.randbelow(10**8):08d}"
    before = (await redis.config_get("maxmemory"))["maxmemory"]
    await redis.config_set("maxmemory", 1)
    try:
        response = await client.post("/api/v1/auth/otp", json={"phone": phone})
    finally:
        await redis.config_set("maxmemory", before)
    assert response.status_code == 503, response.text
    assert int(response.headers["retry-after"]) > 0
    assert response.json()["dependency"] == "redis" and "full" in response.json()["detail"]
    assert (await client.post("/api/v1/auth/otp", json={"phone": phone})).status_code == 202
