"""The payment provider simulator's charges: once per idempotency key, whatever asks again and however."""

from __future__ import annotations

import asyncio
import uuid

import httpx
import psycopg
import pytest

from jatra.infra.pg_listen import asyncpg_dsn
from jatra.settings import Settings
from jatra.stack.manager import Stack
from tests.fixtures.provider import set_faults
from tests.integration.helpers import eventually
from tests.integration.payflow import charges_for

pytestmark = [pytest.mark.integration, pytest.mark.slow]


async def _charge(http: httpx.AsyncClient, key: str, amount: int = 700) -> httpx.Response:
    return await http.post("/charges", json={"idempotency_key": key, "amount": amount, "method": "bkash"})


async def test_a_key_is_charged_once_and_every_repeat_answers_the_first_outcome(
    healthy_provider: Stack, settings: Settings
) -> None:
    captured, declined = f"test-{uuid.uuid4()}", f"test-{uuid.uuid4()}"
    async with httpx.AsyncClient(base_url=settings.provider) as http:
        first = await _charge(http, captured)
        await set_faults(settings, decline_rate=1.0)
        again = await _charge(http, captured, amount=1)  # another amount: the first charge stands
        refused = await _charge(http, declined)
        await set_faults(settings, decline_rate=0.0)
        refused_again = await _charge(http, declined)
    expected = {"idempotency_key": captured, "amount": 700, "method": "bkash", "status": "CAPTURED"}
    assert (first.status_code, first.json()) == (201, expected)
    assert (again.status_code, again.json()) == (200, expected)
    assert (refused.status_code, refused.json()["status"]) == (201, "DECLINED")
    assert (refused_again.status_code, refused_again.json()["status"]) == (200, "DECLINED")
    assert await charges_for(settings, captured) == ["CAPTURED"]
    assert await charges_for(settings, declined) == ["DECLINED"]


async def test_a_voided_key_takes_nothing(healthy_provider: Stack, settings: Settings) -> None:
    key = f"test-{uuid.uuid4()}"
    async with httpx.AsyncClient(base_url=settings.provider) as http:
        voided = await http.post(f"/charges/{key}/void")
        late = await _charge(http, key)
    assert voided.json()["status"] == "VOIDED"
    assert (late.status_code, late.json()["status"], late.json()["amount"]) == (200, "VOIDED", 0)
    assert await charges_for(settings, key) == ["VOIDED"]


async def test_charges_of_one_key_at_once_take_the_money_once(
    healthy_provider: Stack, settings: Settings
) -> None:
    key = f"test-{uuid.uuid4()}"
    async with httpx.AsyncClient(base_url=settings.provider) as http:
        answers = await asyncio.gather(*(_charge(http, key) for _ in range(20)))
    assert sorted(a.status_code for a in answers) == [200] * 19 + [201]
    assert {a.json()["status"] for a in answers} == {"CAPTURED"}
    assert await charges_for(settings, key) == ["CAPTURED"]


async def test_a_charge_that_waited_on_another_with_its_key_answers_the_others_outcome(
    healthy_provider: Stack, settings: Settings
) -> None:
    """Another transaction has the key's row inserted, not committed: the charge's statement waits on the
    conflict, and once that commits, its snapshot (older) cannot see the row. It reads again instead of
    answering nothing (a 500)."""
    key = f"test-{uuid.uuid4()}"
    dsn = asyncpg_dsn(settings.db_admin_url)
    other = await psycopg.AsyncConnection.connect(dsn)
    watch = await psycopg.AsyncConnection.connect(dsn, autocommit=True)  # outside ``other``'s snapshot
    try:
        await other.execute(
            "INSERT INTO provider_charges (idempotency_key, amount, method, status) "
            "VALUES (%s, 300, 'nagad', 'CAPTURED')",
            (key,),
        )
        async with httpx.AsyncClient(base_url=settings.provider) as http:
            charging = asyncio.create_task(_charge(http, key))

            async def waiting_on_the_row() -> bool:
                cur = await watch.execute(
                    "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                    "AND application_name = 'jatra-payment-provider' AND query LIKE %s",
                    ("%INSERT INTO provider_charges%",),
                )
                row = await cur.fetchone()
                return row is not None and row[0] > 0

            await eventually(waiting_on_the_row, 10, "the charge waiting on the uncommitted row")
            await other.commit()
            answer = await charging
    finally:
        await other.close()
        await watch.close()
    assert answer.status_code == 200
    assert answer.json() == {"idempotency_key": key, "amount": 300, "method": "nagad", "status": "CAPTURED"}
    assert await charges_for(settings, key) == ["CAPTURED"]
