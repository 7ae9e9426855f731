"""What the README says the `jatra` command does, run as a user runs it (a subprocess, the test stack's
environment): `jatra seed` and its counts, `jatra grant-admin`, `jatra mailbox show`."""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
from zoneinfo import ZoneInfo

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from jatra.catalog.repository import materialise_journeys
from jatra.infra.db import create_engine
from jatra.settings import Settings
from jatra.stack.manager import Stack
from tests.integration.test_auth import last_code, login, new_phone

pytestmark = pytest.mark.integration
Client = AsyncTestClient[Litestar]


def jatra(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "jatra", *args], capture_output=True, text=True, check=False, timeout=120
    )


def test_seed_loads_the_timetable_the_readme_describes(stack: Stack) -> None:
    seeded = jatra("seed")
    assert seeded.returncode == 0, seeded.stderr
    assert "seeded 55 stations, 17 lines, 76 trains, 54854 seats" in seeded.stdout


async def test_seed_makes_a_journey_per_running_train_and_day(stack: Stack, settings: Settings) -> None:
    # "Today" is the railway's day (Asia/Dhaka), not the database server's: at 00:10 in Dhaka it is still
    # yesterday in UTC (a clean run at 18:10 UTC met it).
    today = dt.datetime.now(ZoneInfo(settings.timezone)).date()
    engine = create_engine(settings, admin=True)
    async with engine.connect() as conn:
        days = (
            await conn.execute(
                text(
                    "SELECT count(DISTINCT service_date) FROM journeys"
                    " WHERE service_date BETWEEN :first AND :last"
                ),
                {"first": today, "last": today + dt.timedelta(days=settings.timetable_horizon_days - 1)},
            )
        ).scalar_one()
        per_day = (
            await conn.execute(
                text(
                    "SELECT max(n) FROM (SELECT count(*) n FROM journeys"
                    " WHERE service_date >= :first GROUP BY service_date) x"
                ),
                {"first": today},
            )
        ).scalar_one()
    await engine.dispose()
    assert days == settings.timetable_horizon_days  # every day of the horizon has journeys
    assert 0 < per_day <= 76  # at most one journey per train a day (trains have an off day)


async def test_a_long_horizon_is_materialised_in_statements_postgres_accepts(
    stack: Stack, settings: Settings
) -> None:
    # 200 days of 76 trains is over 40,000 bind parameters: one INSERT of them all was refused by Postgres's
    # protocol (at most 32,767), which `jatra seed --days 170` met. Rolled back: no far-future journeys stay.
    first = dt.datetime.now(ZoneInfo(settings.timezone)).date() + dt.timedelta(days=400)
    last = first + dt.timedelta(days=199)
    engine = create_engine(settings, admin=True)
    try:
        async with AsyncSession(engine) as session, session.begin():
            created = await materialise_journeys(session, first, last, ZoneInfo(settings.timezone))
            assert len(created) > 32767 // 3
            assert min(created) == first and max(created) == last
            await session.rollback()
    finally:
        await engine.dispose()


async def test_mailbox_show_prints_what_a_passenger_was_sent(
    client: Client, settings: Settings, stack: Stack
) -> None:
    phone = new_phone()
    assert (await client.post("/api/v1/auth/otp", json={"phone": phone})).status_code == 202
    shown = jatra("mailbox", "show", "--to", phone)
    assert shown.returncode == 0 and last_code(settings, phone) in shown.stdout


async def test_grant_admin_makes_an_account_an_admin(
    client: Client, settings: Settings, stack: Stack
) -> None:
    phone = new_phone()
    assert "log in once first" in jatra("grant-admin", phone).stderr  # no such account yet
    await login(client, settings, phone)
    granted = jatra("grant-admin", phone)
    assert granted.returncode == 0 and "is now an admin" in granted.stdout
    tokens = await login(client, settings, phone)  # a new login carries the new role
    listed = await client.get(
        "/api/v1/admin/journeys/1/holds", headers={"Authorization": f"Bearer {tokens['access_token']}"}
    )
    assert listed.status_code in {200, 422}  # not 403: the role is admin now
