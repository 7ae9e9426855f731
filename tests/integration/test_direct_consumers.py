"""The local stack's payment and notifications workers talk to Postgres itself, not through PgBouncer 1.18,
where nothing stays prepared (`jatra.stack.apps`, ``straight_to_postgres``); the API replicas still go
through PgBouncer. Read from both servers while a booking is paid and its notices sent."""

from __future__ import annotations

import psycopg
import pytest

from jatra.settings import Settings
from jatra.stack.manager import Stack
from tests.fixtures.accounts import MakePassengers
from tests.integration.payflow import a_confirmed_booking

pytestmark = pytest.mark.integration
CONSUMERS = {"jatra-payments", "jatra-notifications"}


def console(settings: Settings, command: str, column: str) -> set[object]:
    """One column of a PgBouncer admin console command (SHOW CLIENTS, SHOW SERVERS)."""
    dsn = f"postgresql://postgres@127.0.0.1:{settings.ports.pgbouncer}/pgbouncer"
    with psycopg.connect(dsn, autocommit=True) as conn:
        cursor = conn.execute(command)
        index = [d.name for d in cursor.description or []].index(column)
        return {row[index] for row in cursor.fetchall()}


def own_sessions(settings: Settings) -> set[str]:
    """The application names of Postgres's sessions that are not PgBouncer's server connections (whose
    backends take the name of the client they serve, so the name alone does not tell them apart). They are
    told apart by the backend's PID, which PgBouncer lists for each server connection (``remote_pid``),
    whether it reaches Postgres by TCP or by its Unix socket. PgBouncer's servers are listed before and
    after Postgres's sessions are read, so a server connection opened in between is still known as
    PgBouncer's."""
    pooled = console(settings, "SHOW SERVERS", "remote_pid")
    dsn = f"postgresql://postgres@127.0.0.1:{settings.ports.postgres}/jatra"
    with psycopg.connect(dsn, autocommit=True) as conn:
        rows = conn.execute("SELECT application_name, pid FROM pg_stat_activity").fetchall()
    pooled |= console(settings, "SHOW SERVERS", "remote_pid")
    return {name for name, pid in rows if pid not in pooled}


async def test_the_booking_paths_consumers_go_straight_to_postgres(
    jatra_processes_running: Stack, make_passengers: MakePassengers, settings: Settings
) -> None:
    await a_confirmed_booking(settings, make_passengers)
    clients = console(settings, "SHOW CLIENTS", "application_name")
    assert "jatra-api" in clients  # the replicas' pools, which booked it
    assert not clients & CONSUMERS, clients
    sessions = own_sessions(settings)
    assert sessions >= CONSUMERS, sessions  # their own sessions, named at connect
    assert "jatra-api" not in sessions  # the replicas' sessions are all PgBouncer's


def console_rows(settings: Settings, command: str, *columns: str) -> set[tuple[object, ...]]:
    dsn = f"postgresql://postgres@127.0.0.1:{settings.ports.pgbouncer}/pgbouncer"
    with psycopg.connect(dsn, autocommit=True) as conn:
        cursor = conn.execute(command)
        names = [d.name for d in cursor.description or []]
        return {tuple(row[names.index(c)] for c in columns) for row in cursor.fetchall()}


async def test_the_provider_simulator_has_server_connections_of_its_own(
    jatra_processes_running: Stack, make_passengers: MakePassengers, settings: Settings
) -> None:
    """The payment provider simulator reaches the database through PgBouncer by a name of its own, so no
    server connection passes between it and the API (each pass cost a ``SET application_name``)."""
    await a_confirmed_booking(settings, make_passengers)  # charged through the simulator
    clients = console_rows(settings, "SHOW CLIENTS", "database", "application_name")
    assert ("provider", "jatra-payment-provider") in clients, clients
    assert ("jatra", "jatra-api") in clients, clients
    assert {name for database, name in clients if database == "provider"} == {"jatra-payment-provider"}
    servers = console_rows(settings, "SHOW SERVERS", "database", "application_name")
    assert {name for database, name in servers if database == "provider"} <= {"jatra-payment-provider", ""}
    assert "jatra-payment-provider" not in {name for database, name in servers if database == "jatra"}
