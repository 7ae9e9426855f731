"""The outbox relay's own Postgres connection: raw asyncpg, no ORM, statements prepared once.

A relay pass is a short transaction (claim a batch and mark it sent, publish it, commit), the same
statement every time, so it runs on one connection the relay keeps: straight to Postgres when the
settings give a direct URL (``db_listen_url``, as for its LISTEN session), where asyncpg's statement cache
holds it prepared; else through PgBouncer with the cache off, as every other connection there.
A pass that fails closes the connection, and the next pass makes a new one: after a connection was
killed, asyncpg can be left unusable without saying so (an InternalClientError on every later query, seen
in a test), and a pass that failed for another reason (the broker) loses only a reconnect.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import asyncpg

from jatra.infra.pg_listen import asyncpg_dsn
from jatra.settings import Settings


class RelayConnection:
    def __init__(self, settings: Settings, name: str) -> None:
        self.direct = bool(settings.db_listen_url)
        self.dsn = asyncpg_dsn(settings.db_listen_url or settings.db_url)
        self.name = name
        self._conn: asyncpg.Connection | None = None

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[asyncpg.Connection]:
        """The connection inside a transaction (committed when the block ends, rolled back on error)."""
        conn = await self._connect()
        try:
            async with conn.transaction():
                yield conn
        except Exception:
            await self.close()
            raise

    async def _connect(self) -> asyncpg.Connection:
        if self._conn is None or self._conn.is_closed():
            self._conn = await asyncpg.connect(
                self.dsn,
                timeout=5,
                command_timeout=30,
                statement_cache_size=100 if self.direct else 0,
                # UTF8 as the server spells it: behind PgBouncer asyncpg's 'utf-8' costs a SET each time
                server_settings={"client_encoding": "UTF8", "application_name": f"jatra-{self.name}"},
            )
        return self._conn

    async def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(Exception):
                await conn.close(timeout=1)
