"""Statements asked in one exchange: psycopg 3 in autocommit, without the ORM, for the hot path.

How a statement is asked costs more than the statement (``make bench-db-read``): through SQLAlchemy on
asyncpg behind PgBouncer, one read is BEGIN, a prepare (Parse, Describe), the execution and COMMIT or
ROLLBACK, four exchanges, plus the ORM's own work: 1.67 ms of CPU over the client, PgBouncer and Postgres.
psycopg 3 in autocommit with nothing prepared server-side sends Parse, Bind, Describe, Execute and Sync at
once and reads the answer: one exchange, 0.37 ms. PgBouncer's transaction pooling takes that exchange like
a simple query (the server connection is the client's until the Sync's ReadyForQuery), so it is safe there;
straight to Postgres, statements asked often are prepared once per connection (psycopg's default
threshold), as nothing hands the connection to anyone else.

Autocommit means each statement is its own transaction: this is only for statements that are a whole
unit of work alone (Jatra writes those as one statement with CTEs). Spans come from OpenTelemetry's psycopg
instrumentation (installed with the others, before any pool connects), parameters never recorded.
"""

from __future__ import annotations

from typing import Any, LiteralString, TypeVar

from psycopg import AsyncConnection
from psycopg.rows import class_row
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from jatra.infra.pg_listen import asyncpg_dsn
from jatra.settings import Settings

T = TypeVar("T")

#: a pooled connection unused this long is closed (a quiet process keeps none)
MAX_IDLE_S = 300.0


class Statements:
    """One process's pool of autocommit connections. It keeps none open until asked (``min_size=0``): a
    process that never asks holds no connection, and one started while Postgres is down starts all the
    same."""

    def __init__(self, settings: Settings, name: str, size: int, timeout_s: float) -> None:
        self.dsn = asyncpg_dsn(settings.db_url)
        self.options: dict[str, Any] = {
            "autocommit": True,
            "connect_timeout": 5,
            "application_name": f"jatra-{name}",
            # behind PgBouncer's transaction pooling nothing may stay prepared on a server connection
            "prepare_threshold": None if settings.database_via_pgbouncer else 5,
        }
        self.pool: AsyncConnectionPool[AsyncConnection[Any]] = AsyncConnectionPool(
            self.dsn,
            min_size=0,
            max_size=size,
            timeout=timeout_s,
            max_idle=MAX_IDLE_S,
            open=False,
            kwargs=self.options,
            name=f"jatra-{name}",
        )

    async def open(self) -> None:
        await self.pool.open(wait=False)

    async def one(self, sql: LiteralString, params: dict[str, Any], row: type[T]) -> T | None:
        """The first row of ``sql`` as a ``row`` (its fields named as the statement's columns), or None.
        Raises psycopg's errors: ``PoolTimeout`` when every connection stayed busy (overload), and an
        ``OperationalError`` when none could be made (an outage: the pool retries in the background and
        only times its waiters out, so the two are told apart here)."""
        try:
            async with self.pool.connection() as conn:
                cursor = conn.cursor(row_factory=class_row(row))
                await cursor.execute(sql, params)
                return await cursor.fetchone()
        except PoolTimeout:
            # overload, or an outage? One connection of our own tells: it fails at once when Postgres (or
            # PgBouncer) is down, and then its OperationalError is raised instead (this is the error path)
            probe = await AsyncConnection.connect(self.dsn, **self.options)
            await probe.close()
            raise

    async def close(self) -> None:
        await self.pool.close()
