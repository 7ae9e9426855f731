from __future__ import annotations

import pytest
import redis.exceptions
import sqlalchemy.exc

from jatra.errors import dependency_of


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
