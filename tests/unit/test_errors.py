from __future__ import annotations

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
        (ConnectionRefusedError(), "network"),
        (ValueError("bug"), None),
    ],
)
def test_dependency_failures_are_recognised(exc: Exception, dependency: str | None) -> None:
    assert dependency_of(exc) == dependency


def test_a_pool_timeout_reads_as_overload_not_outage() -> None:
    error = dependency_error(sqlalchemy.exc.TimeoutError("QueuePool limit reached"))
    assert error is not None and error.dependency == "postgres" and "overloaded" in error.detail
    assert dependency_error(ValueError("bug")) is None
    outage = dependency_error(redis.exceptions.ConnectionError("down"))
    assert outage is not None and outage.dependency == "redis" and "unavailable" in outage.detail
