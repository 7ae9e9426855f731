from __future__ import annotations

import asyncpg
import psycopg
import psycopg_pool
import pytest
import redis.exceptions
import sqlalchemy.exc

from jatra.errors import dependency_error, dependency_of


@pytest.mark.parametrize(
    ("exc", "dependency"),
    [
        (redis.exceptions.ConnectionError("down"), "redis"),
        (redis.exceptions.TimeoutError("slow"), "redis"),
        (sqlalchemy.exc.OperationalError("SELECT 1", {}, Exception("refused")), "postgres"),
        (psycopg.OperationalError("connection failed"), "postgres"),
        (psycopg_pool.PoolTimeout("couldn't get a connection after 5.00 sec"), "postgres"),
        (psycopg.errors.UniqueViolation("duplicate key"), None),
        (psycopg.errors.AdminShutdown("terminating connection due to administrator command"), "postgres"),
        (psycopg.errors.TooManyConnections("sorry, too many clients already"), "postgres"),
        (psycopg.errors.DeadlockDetected("deadlock detected"), None),
        (psycopg.errors.SerializationFailure("could not serialize access"), None),
        # asyncpg's own errors, as they leave the ORM's connect unwrapped
        (asyncpg.exceptions.TooManyConnectionsError("sorry, too many clients already"), "postgres"),
        (asyncpg.exceptions.CannotConnectNowError("the database system is starting up"), "postgres"),
        (asyncpg.exceptions.AdminShutdownError("terminating connection"), "postgres"),
        (asyncpg.exceptions.ProtocolViolationError("no more connections allowed"), "postgres"),
        (asyncpg.exceptions.ConnectionDoesNotExistError("connection was closed"), "postgres"),
        (asyncpg.exceptions.DeadlockDetectedError("deadlock detected"), None),
        (asyncpg.exceptions.QueryCanceledError("canceling statement due to statement timeout"), None),
        (asyncpg.exceptions.UniqueViolationError("duplicate key"), None),
        (ConnectionRefusedError(), "network"),
        (ValueError("bug"), None),
    ],
)
def test_dependency_failures_are_recognised(exc: Exception, dependency: str | None) -> None:
    assert dependency_of(exc) == dependency


@pytest.mark.parametrize(
    "timeout",
    [
        sqlalchemy.exc.TimeoutError("QueuePool limit reached"),
        psycopg_pool.PoolTimeout("no connection in 5 s"),
    ],
)
def test_a_pool_timeout_reads_as_overload_not_outage(timeout: Exception) -> None:
    error = dependency_error(timeout)
    assert error is not None and error.dependency == "postgres" and "overloaded" in error.detail
    assert dependency_error(ValueError("bug")) is None
    outage = dependency_error(redis.exceptions.ConnectionError("down"))
    assert outage is not None and outage.dependency == "redis" and "unavailable" in outage.detail
