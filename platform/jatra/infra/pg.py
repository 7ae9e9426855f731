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
instrumentation (installed with the others, before any pool connects), and for a transaction's statements
(pipelined) from :func:`_statement_span`; parameters never recorded.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from typing import Any, LiteralString, TypeVar

import psycopg
from opentelemetry import context, trace
from opentelemetry.context import _SUPPRESS_INSTRUMENTATION_KEY
from opentelemetry.instrumentation.utils import is_instrumentation_enabled
from opentelemetry.trace import SpanKind
from psycopg import AsyncConnection, AsyncCursor
from psycopg.pq import TransactionStatus
from psycopg.rows import class_row
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from jatra.infra.pg_listen import asyncpg_dsn
from jatra.settings import Settings

T = TypeVar("T")
tracer = trace.get_tracer(__name__)

#: a pooled connection unused this long is closed (a quiet process keeps none)
MAX_IDLE_S = 300.0
#: the longest a statement may take (as the ORM engine's command_timeout)
STATEMENT_TIMEOUT_S = 30.0
#: a connection attempt the pool makes in the background gives up after this long, so the next request
#: starts a fresh one: psycopg_pool's default (300 s, backing off up to minutes between tries) would keep
#: the hot path down long after Postgres or PgBouncer came back
RECONNECT_TIMEOUT_S = 3.0
#: how long one outage probe's answer stands for every waiter that timed out (see ``_connection``)
PROBE_TTL_S = 1.0
#: a statement that calls one of Jatra's functions in Postgres (``... FROM jatra_accept_booking(...)``)
_CALLED = re.compile(r"\bFROM\s+(jatra_\w+)\s*\(")


async def _first(
    conn: AsyncConnection[Any], sql: LiteralString, params: dict[str, Any], row: type[T]
) -> T | None:
    cursor = conn.cursor(row_factory=class_row(row))
    try:
        # the engine's command_timeout: a lock wait, PgBouncer's queue or a dead peer never holds a request
        # or a worker's slot for long (psycopg cancels the statement on the server when cancelled)
        async with asyncio.timeout(STATEMENT_TIMEOUT_S):
            await cursor.execute(sql, params)
            return await cursor.fetchone()
    except psycopg.Error as exc:
        _scrub(exc)
        raise


def _scrub(exc: psycopg.Error) -> None:
    """libpq's message carries the DETAIL line, which can quote a row ("Failing row contains (...)": names,
    phones, e-mails): only the primary message goes on into logs and spans (a client-side error, a lost
    connection, has no server message and quotes no row)."""
    if exc.diag.message_primary is not None:
        exc.args = (exc.diag.message_primary,)


def _span_name(sql: str) -> str:
    """The statement's first word, and the function it calls if it calls one of Jatra's
    (``SELECT jatra_accept_booking``, as a stored procedure's call is named): the call's first word alone
    would make a booking's write read as any other SELECT in a trace."""
    operation = sql.split(maxsplit=1)[0]
    called = _CALLED.search(sql)
    return f"{operation} {called.group(1)}" if called else operation


@contextlib.contextmanager
def _statement_span(conn: AsyncConnection[Any], sql: str) -> Iterator[None]:
    """A client span for a statement asked in pipeline mode, from its sending to its answer, named and
    described as the psycopg instrumentation's (whose own span, around ``execute`` only, would end before
    the server answered: execute only queues in pipeline mode), which is suppressed meanwhile. Never the
    parameters. Nothing at all where instrumentation is suppressed already (an unsampled request, see
    jatra.telemetry.edge_sampling)."""
    if not is_instrumentation_enabled():
        yield
        return
    with tracer.start_as_current_span(_span_name(sql), kind=SpanKind.CLIENT) as span:
        if span.is_recording():
            info = conn.info
            span.set_attributes(
                {"db.system": "postgresql", "db.name": info.dbname, "db.user": info.user, "db.statement": sql,
                 "net.peer.name": info.host, "net.peer.port": info.port}
            )  # fmt: skip
        token = context.attach(context.set_value(_SUPPRESS_INSTRUMENTATION_KEY, True))
        try:
            yield
        finally:
            context.detach(token)


class Transaction:
    """Statements on one connection inside :meth:`Statements.transaction`."""

    def __init__(self, conn: AsyncConnection[Any]) -> None:
        self.conn = conn
        self.undone = False

    def undo(self) -> None:
        """Roll back, not commit, when the block ends (without raising: an outcome, not an error)."""
        self.undone = True

    async def one(self, sql: LiteralString, params: dict[str, Any], row: type[T]) -> T | None:
        with _statement_span(self.conn, sql):
            return await _first(self.conn, sql, params, row)


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
            reconnect_timeout=RECONNECT_TIMEOUT_S,
            open=False,
            kwargs=self.options,
            name=f"jatra-{name}",
        )
        self._probing = asyncio.Lock()
        self._probed_at = -PROBE_TTL_S - 1
        self._outage: psycopg.OperationalError | None = None

    async def open(self) -> None:
        await self.pool.open(wait=False)

    async def one(self, sql: LiteralString, params: dict[str, Any], row: type[T]) -> T | None:
        """The first row of ``sql`` as a ``row`` (its fields named as the statement's columns), or None.
        One statement, its own transaction (autocommit)."""
        async with self._connection() as conn:
            return await _first(conn, sql, params, row)

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[Transaction]:
        """Statements in one transaction, committed when the block ends, rolled back if it raises or
        was undone. Pipelined (psycopg's pipeline mode): BEGIN goes out with the first statement, in its
        exchange, and COMMIT is one more exchange, so two for a transaction of one statement (psycopg's
        own ``transaction()`` waits for its BEGIN: three, or five in pipeline mode). So only for work that
        needs something between its statement and its commit (the booking's check of its hold in Redis).
        BEGIN and COMMIT are asked on a plain cursor: no span of their own, as before."""
        async with self._connection() as conn:
            tx = Transaction(conn)
            try:
                async with conn.pipeline():
                    await AsyncCursor(conn).execute("BEGIN")  # queued: sent with the first statement
                    yield tx
                    await AsyncCursor(conn).execute("ROLLBACK" if tx.undone else "COMMIT")
            except BaseException as exc:
                if isinstance(exc, psycopg.Error):  # COMMIT's own error comes from the pipeline's end
                    _scrub(exc)
                if not conn.closed and conn.info.transaction_status != TransactionStatus.IDLE:
                    with contextlib.suppress(psycopg.Error):  # a broken connection: the pool drops it
                        await conn.rollback()
                raise

    @asynccontextmanager
    async def _connection(self) -> AsyncIterator[AsyncConnection[Any]]:
        """A pooled connection. Raises psycopg's errors: ``PoolTimeout`` when every connection stayed busy
        (overload), an ``OperationalError`` when none could be made (an outage: the pool retries in the
        background and only times its waiters out, so the two are told apart here)."""
        try:
            conn = await self.pool.getconn()
        except PoolTimeout:
            await self._probe()
            raise
        try:
            yield conn
        except psycopg.OperationalError:
            if conn.closed:  # the server went away (a restart): its idle siblings are likely dead too
                await self.pool.putconn(conn)
                await self.pool.check()
                raise
            await self.pool.putconn(conn)
            raise
        except BaseException:
            await self.pool.putconn(conn)
            raise
        await self.pool.putconn(conn)

    async def _probe(self) -> None:
        """Overload, or an outage? One connection of our own tells: it fails at once when Postgres (or
        PgBouncer) is down, and then its OperationalError is raised (the error path only). One probe at a
        time, its answer kept for a second: waiters time out together, and under overload a burst of
        logins would add to it."""
        async with self._probing:
            if time.monotonic() - self._probed_at > PROBE_TTL_S:
                self._probed_at = time.monotonic()
                try:
                    probe = await AsyncConnection.connect(self.dsn, **self.options)
                except psycopg.OperationalError as exc:
                    self._outage = exc
                else:
                    self._outage = None
                    await probe.close()
        if self._outage is not None:
            raise psycopg.OperationalError(f"no connection to Postgres: {self._outage}")

    async def warm(self, connections: int) -> None:
        """Make the pool open ``connections`` connections: all held at once, then given back."""
        async with contextlib.AsyncExitStack() as held:
            for _ in range(connections):
                await held.enter_async_context(self._connection())

    async def close(self) -> None:
        await self.pool.close()
