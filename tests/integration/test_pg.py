"""The hot path's one-exchange statements (jatra.infra.pg) against the real Postgres, through PgBouncer:
what an error says, what a transaction keeps, and that the pool comes back with the server."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import time
import uuid
from collections.abc import AsyncIterator

import asyncpg
import psycopg
import pytest
from litestar import Litestar
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode
from psycopg.pq import TransactionStatus
from psycopg_pool import PoolTimeout
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

from jatra.errors import dependency_error
from jatra.infra import pg as pg_module
from jatra.infra.pg import Statements
from jatra.infra.pg_listen import asyncpg_dsn
from jatra.infra.resources import open_resources
from jatra.settings import Settings
from jatra.stack.manager import Stack
from jatra.stack.procs import free_port
from tests.integration.helpers import eventually

pytestmark = pytest.mark.integration


@dataclasses.dataclass(frozen=True, slots=True)
class One:
    n: int


@pytest.fixture
async def pg(stack: Stack, settings: Settings) -> AsyncIterator[Statements]:
    pg = Statements(settings, "test-pg", size=2, timeout_s=5)
    await pg.open()
    yield pg
    await pg.close()


async def test_an_error_keeps_its_primary_message_and_never_the_row_it_quotes(pg: Statements) -> None:
    """A constraint's DETAIL quotes the failing row (passengers' names, phones, e-mails): it never reaches
    a log or a span, which take the error's text."""
    with pytest.raises(psycopg.errors.NotNullViolation) as failed:
        await pg.one(
            "INSERT INTO idempotency_keys (user_id, key, request_hash, expires_at) "
            "VALUES (gen_random_uuid(), %(key)s, NULL, now()) RETURNING 1 AS n",
            {"key": "Rahim Uddin +8801711000000"},
            One,
        )
    assert "request_hash" in str(failed.value) and "not-null" in str(failed.value)
    assert "Rahim" not in str(failed.value) and "Failing row" not in str(failed.value)
    assert failed.value.diag.message_detail is not None  # the server did send it: dropped, not absent


INSERT_KEY = """
    INSERT INTO idempotency_keys (user_id, key, request_hash, status, expires_at)
    VALUES (%(user)s, %(key)s, 'h', 'DONE', now() + interval '1 minute') RETURNING 1 AS n
    """


def pool_rollbacks(caplog: pytest.LogCaptureFixture) -> list[str]:
    """psycopg_pool's warnings for a connection given back inside a transaction (which it rolls back itself,
    so a block's own rollback could be missing and its rows still not kept) or inside a statement."""
    return [r.getMessage() for r in caplog.records if "returned connection" in r.getMessage()]


async def test_a_transaction_commits_at_its_end_and_otherwise_writes_nothing(
    stack: Stack, settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    """``Statements.transaction`` (pipelined: BEGIN goes out with the first statement) commits what its block
    wrote, and writes nothing when the block was undone, raised, or its statement failed; it ends its
    transaction itself, so its connection goes back to the pool out of any transaction."""
    caplog.set_level(logging.WARNING, logger="psycopg.pool")
    pg = Statements(settings, "test-pg-tx", size=1, timeout_s=5)  # one connection: each block reuses it
    await pg.open()
    user = uuid.uuid4()
    try:
        async with pg.transaction() as tx:
            assert await tx.one(INSERT_KEY, {"user": user, "key": "committed"}, One) == One(1)
        async with pg.transaction() as tx:
            assert await tx.one(INSERT_KEY, {"user": user, "key": "undone"}, One) == One(1)
            tx.undo()
        with pytest.raises(LookupError):
            async with pg.transaction() as tx:
                await tx.one(INSERT_KEY, {"user": user, "key": "raised"}, One)
                raise LookupError
        with pytest.raises(psycopg.errors.UniqueViolation):
            async with pg.transaction() as tx:
                await tx.one(INSERT_KEY, {"user": user, "key": "failed"}, One)
                await tx.one(INSERT_KEY, {"user": user, "key": "committed"}, One)
        async with pg.pool.connection() as conn:
            assert conn.info.transaction_status == TransactionStatus.IDLE
        kept = await pg.one(
            "SELECT string_agg(key, ',' ORDER BY key) AS keys FROM idempotency_keys WHERE user_id = %(user)s",
            {"user": user},
            Keys,
        )
        assert kept == Keys("committed")
        assert pool_rollbacks(caplog) == []
    finally:
        await pg.one(
            "DELETE FROM idempotency_keys WHERE user_id = %(user)s RETURNING 1 AS n", {"user": user}, One
        )
        await pg.close()


async def test_a_statement_timed_out_in_a_transaction_is_cancelled_and_its_connection_reused(
    stack: Stack, settings: Settings, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """A statement of a pipelined transaction that waits on a lock past the timeout: the caller gets a
    TimeoutError, the server stops waiting (psycopg cancels it), and the pool's one connection serves the
    next transaction. Straight to Postgres: PgBouncer 1.18 may exit on a cancel's race (pgbouncer#801)."""
    caplog.set_level(logging.WARNING, logger="psycopg.pool")
    direct = dataclasses.replace(settings, database_via_pgbouncer=False)
    pg = Statements(direct, "test-pg-timeout", size=1, timeout_s=5)
    await pg.open()
    user = uuid.uuid4()
    blocker = await psycopg.AsyncConnection.connect(asyncpg_dsn(direct.db_url))
    monkeypatch.setattr(pg_module, "STATEMENT_TIMEOUT_S", 0.5)
    try:
        async with pg.transaction() as tx:
            backend = await tx.one("SELECT pg_backend_pid() AS n", {}, One)
        await blocker.execute(INSERT_KEY, {"user": user, "key": "locked"})  # its transaction stays open
        with pytest.raises(TimeoutError):
            async with pg.transaction() as tx:
                await tx.one(INSERT_KEY, {"user": user, "key": "locked"}, One)  # waits on the blocker's row
        waiting = (
            "SELECT count(*) AS n FROM pg_stat_activity"
            " WHERE application_name = 'jatra-test-pg-timeout' AND wait_event_type = 'Lock'"
        )

        async def stopped_waiting() -> bool:  # the cancel is a request of its own: it may land a moment later
            dsn = asyncpg_dsn(direct.db_url)
            async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as c:
                return (await (await c.execute(waiting)).fetchone()) == (0,)

        await eventually(stopped_waiting, 5, "the timed-out statement cancelled on the server")
        async with pg.transaction() as tx:  # the same server session: the connection was kept
            assert await tx.one("SELECT pg_backend_pid() AS n", {}, One) == backend
        assert pool_rollbacks(caplog) == []
    finally:
        await blocker.rollback()
        await blocker.close()
        await pg.close()


async def test_a_transaction_statement_is_one_span_from_its_sending_to_its_answer(
    app: Litestar, spans: InMemorySpanExporter, settings: Settings
) -> None:
    """In pipeline mode psycopg's ``execute`` only queues a statement: the instrumentation's span around it
    would end before the server answered. ``Transaction.one`` makes the statement's span itself, from its
    sending to its answer, and marks it when the statement fails; the instrumentation's is suppressed.
    (``app``: the tracer provider of the tests, with ``spans`` as its exporter.)"""
    pg = Statements(settings, "test-pg-span", size=1, timeout_s=5)
    await pg.open()
    spans.clear()
    try:
        async with pg.transaction() as tx:
            await tx.one("SELECT 1 AS n FROM pg_sleep(0.3)", {}, One)
        with pytest.raises(psycopg.errors.DivisionByZero):
            async with pg.transaction() as tx:
                await tx.one("SELECT 1 / 0 AS n", {}, One)
    finally:
        await pg.close()
    statements = [s for s in spans.get_finished_spans() if s.attributes and "db.statement" in s.attributes]
    assert [(s.name, s.instrumentation_scope.name) for s in statements] == [("SELECT", "jatra.infra.pg")] * 2
    slept, failed = statements
    assert slept.end_time is not None and slept.start_time is not None
    assert slept.end_time - slept.start_time >= 300_000_000  # ns: the server's answer, not the send
    assert slept.status.status_code == StatusCode.UNSET and failed.status.status_code == StatusCode.ERROR
    assert (slept.attributes or {})["db.system"] == "postgresql"


@dataclasses.dataclass(frozen=True, slots=True)
class Keys:
    keys: str | None


@contextlib.asynccontextmanager
async def relay(port: int, to: int) -> AsyncIterator[None]:
    """A TCP relay from ``port`` to ``to``: Postgres reachable again on ``port`` while it runs."""

    async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError):
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        writer.close()

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", to)
        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))

    server = await asyncio.start_server(serve, "127.0.0.1", port)
    try:
        yield
    finally:
        server.close()


async def test_the_pool_comes_back_within_seconds_of_the_server(stack: Stack, settings: Settings) -> None:
    """After an outage of 20 s, the next statements find Postgres within seconds: the pool's background
    attempt gives up after a few seconds so a request starts a fresh one (psycopg_pool's default backs off
    to about 34 s between tries by then). Meanwhile each statement fails as an outage, not as overload."""
    port = free_port()
    where = dataclasses.replace(settings, database_url=f"postgresql+asyncpg://jatra@127.0.0.1:{port}/jatra")
    pg = Statements(where, "test-outage", size=2, timeout_s=1)
    await pg.open()
    try:
        started = time.monotonic()
        while time.monotonic() - started < 20:
            with pytest.raises(psycopg.OperationalError) as failed:
                await pg.one("SELECT 1 AS n", {}, One)
            assert not isinstance(failed.value, PoolTimeout), "an outage is not overload"
            await asyncio.sleep(1)
        async with relay(port, settings.ports.pgbouncer):
            back = time.monotonic()
            while True:
                try:
                    assert await pg.one("SELECT 1 AS n", {}, One) == One(1)
                    break
                except psycopg.OperationalError:
                    assert time.monotonic() - back < 8, "the pool did not come back with the server"
                    await asyncio.sleep(0.5)
    finally:
        await pg.close()


async def _sets_sent(settings: Settings) -> dict[str, int]:
    """What pg_stat_statements counted of each ``SET client_encoding`` Postgres was sent (PgBouncer sends
    them itself)."""
    conn = await psycopg.AsyncConnection.connect(asyncpg_dsn(settings.db_admin_url), autocommit=True)
    async with conn:
        cur = await conn.execute(
            "SELECT query, sum(calls) FROM pg_stat_statements WHERE query LIKE 'SET client_encoding%' "
            "GROUP BY query"
        )
        return dict(await cur.fetchall())


async def test_the_orm_and_the_pool_share_server_connections_without_a_set_between_them(
    stack: Stack, settings: Settings
) -> None:
    """Behind PgBouncer a server connection passes from client to client; where two clients' startup
    parameters differ PgBouncer sends a SET first, one round trip more. asyncpg announced its encoding as
    ``'utf-8'``, which never matched the server's ``UTF8``: a SET before every ORM transaction. Here one
    process's engine and pool take turns on PgBouncer's connections, and no SET client_encoding reaches
    Postgres."""
    assert settings.database_via_pgbouncer
    async with open_resources(settings, "test-sets", needs={"db"}) as res:
        before = await _sets_sent(settings)
        for _ in range(20):
            async with res.db()() as session:
                assert (await session.execute(text("SELECT 1"))).scalar_one() == 1
            assert await res.statements().one("SELECT 1 AS n", {}, One) == One(1)
        sent = {q: n - before.get(q, 0) for q, n in (await _sets_sent(settings)).items()}
    assert not {q: n for q, n in sent.items() if q.startswith("SET client_encoding") and n}


async def test_an_orm_statement_runs_under_its_own_process_name(stack: Stack, settings: Settings) -> None:
    """pg_stat_activity names the process behind each statement (on-call's "who holds this lock"). Behind
    PgBouncer a client that gives no name inherits the last one the server connection had: the ORM's
    statements, unnamed, ran under another process's name."""
    other = Statements(settings, "test-other", size=1, timeout_s=5)
    await other.open()
    try:
        async with open_resources(settings, "test-named", needs={"db"}) as res:
            for _ in range(5):
                assert await other.one("SELECT 1 AS n", {}, One) == One(1)
                async with res.db()() as session:
                    name = await session.scalar(text("SELECT current_setting('application_name')"))
                assert name == "jatra-test-named"
    finally:
        await other.close()


async def test_a_refused_new_orm_connection_is_a_503(stack: Stack, settings: Settings) -> None:
    """Postgres refuses a connection the ORM opens (here: a database that allows none, SQLSTATE 53300, as
    "too many clients" is): the error leaves SQLAlchemy's connect as asyncpg's own, unwrapped, and must
    still be answered 503 with Retry-After, not 500."""
    name = f"full_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(asyncpg_dsn(settings.db_admin_url))
    try:
        await admin.execute(f'CREATE DATABASE "{name}" CONNECTION LIMIT 0')
        engine = create_async_engine(make_url(settings.db_admin_url).set(database=name))
        try:
            with pytest.raises(asyncpg.PostgresError) as refused:
                async with engine.connect():
                    pass
        finally:
            await engine.dispose()
        assert refused.value.sqlstate == "53300", refused.value
        error = dependency_error(refused.value)
        assert error is not None and error.dependency == "postgres" and error.status == 503
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}"')
        await admin.close()
