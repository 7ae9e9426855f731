"""The outbox relay is woken by Postgres, not by polling: the outbox table's trigger NOTIFYs on commit (not
on rollback), the relay's LISTEN session comes back after it is killed and then looks once, and without
a direct Postgres URL the relay polls as before. Against the real Postgres of the test stack.

The whole path is covered too: the test session sets the relay's safety-net poll to a minute
(JATRA_OUTBOX_IDLE_POLL_S in conftest), so every payment-flow test's booking is paid only because its
commit woke the relay."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import datetime as dt
import uuid

import asyncpg
import pytest
from prometheus_client import REGISTRY
from sqlalchemy import delete, insert, text
from sqlalchemy.ext.asyncio import AsyncEngine

from jatra.db.bookings import OutboxMessage
from jatra.infra import outbox, topology
from jatra.infra.db import create_engine
from jatra.infra.pg_listen import Listener, asyncpg_dsn
from jatra.infra.relay_connection import RelayConnection
from jatra.infra.resources import open_resources
from jatra.settings import Settings
from jatra.stack.manager import Stack
from tests.fixtures.logs import Logged
from tests.integration.helpers import eventually

pytestmark = pytest.mark.integration
NAME = "outbox-wakeup-test"


def wakeups(cause: str) -> float:
    return sample("jatra_outbox_wakeups_total", {"cause": cause})


def sample(name: str, labels: dict[str, str] | None = None) -> float:
    return REGISTRY.get_sample_value(name, labels or {}) or 0.0


async def _insert(engine: AsyncEngine, *, commit: bool) -> int:
    """Write one outbox row and commit or roll back; returns the Postgres backend pid that wrote it."""
    async with engine.connect() as conn:
        pid = int(await conn.scalar(text("SELECT pg_backend_pid()")))
        await conn.execute(
            insert(OutboxMessage).values(
                exchange="jatra.events",
                routing_key="test.outbox_wakeup",  # bound to no queue: a relay that publishes it drops it
                message_id=uuid.uuid4(),
                payload={},
                headers={},
            )
        )
        await (conn.commit() if commit else conn.rollback())
    return pid


async def _forget_test_rows(engine: AsyncEngine) -> None:
    async with engine.begin() as conn:
        await conn.execute(delete(OutboxMessage).where(OutboxMessage.routing_key == "test.outbox_wakeup"))
    await engine.dispose()


async def _listening(listener: Listener) -> bool:
    return listener.listening


async def test_the_outbox_trigger_notifies_once_per_commit_and_never_on_rollback(
    stack: Stack, settings: Settings
) -> None:
    """Told apart by the writing backend's pid: the workers of a full test stack write outbox rows too."""
    engine = create_engine(settings, admin=True)
    heard: list[int] = []
    conn = await asyncpg.connect(asyncpg_dsn(settings.db_listen_url))
    await conn.add_listener(outbox.CHANNEL, lambda _c, pid, _ch, _p: heard.append(pid))
    try:
        rolled_back = await _insert(engine, commit=False)
        committed = await _insert(engine, commit=True)

        async def rung() -> bool:
            return committed in heard

        await eventually(rung, 10, "the committed insert rang")
        await asyncio.sleep(0.5)  # anything more from those two would have come by now
        assert heard.count(committed) == 1, "one commit rang more than once"
        # the pool may hand the same connection to both writes: then the one ring heard is the commit's
        assert heard.count(rolled_back) == (rolled_back == committed), "a rolled-back insert rang"
    finally:
        await conn.close()
        await _forget_test_rows(engine)


async def test_a_commit_wakes_the_listener(stack: Stack, settings: Settings) -> None:
    engine = create_engine(settings, admin=True)
    listener = Listener(settings.db_listen_url, outbox.CHANNEL, NAME)
    listener.start()
    try:
        await eventually(lambda: _listening(listener), 10, "the listener holds its session")
        assert await listener.wait(5)  # the look it takes on (re)connecting
        await listener.wait(0.2)  # a ring from another writer, if any, is taken here
        await _insert(engine, commit=True)
        assert await listener.wait(10), "a committed insert did not ring"
    finally:
        await listener.close()
        await _forget_test_rows(engine)


async def test_a_killed_session_comes_back_and_looks_once(stack: Stack, settings: Settings) -> None:
    engine = create_engine(settings, admin=True)
    states: list[bool] = []
    listener = Listener(settings.db_listen_url, outbox.CHANNEL, NAME, states.append)
    listener.start()
    try:
        await eventually(lambda: _listening(listener), 10, "the listener holds its session")
        assert await listener.wait(5)
        async with engine.begin() as conn:
            killed = await conn.scalar(
                text(
                    "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
                    " WHERE application_name = :name"
                ),
                {"name": f"jatra-{NAME}-listen"},
            )
        assert killed == 1

        async def back() -> bool:
            return states[-2:] == [False, True]

        await eventually(back, 15, "the listener lost its session and made a new one")
        assert await listener.wait(5), "no look after coming back: a ring missed meanwhile would be lost"
        await _insert(engine, commit=True)
        assert await listener.wait(10), "the new session does not hear commits"
    finally:
        await listener.close()
        await _forget_test_rows(engine)


async def test_without_a_direct_url_the_relay_polls(stack: Stack, settings: Settings) -> None:
    behind_pgbouncer = dataclasses.replace(
        settings, database_url=settings.db_url, database_via_pgbouncer=True
    )
    assert behind_pgbouncer.db_listen_url == ""
    before = {cause: wakeups(cause) for cause in ("poll", "backlog")}
    async with open_resources(behind_pgbouncer, NAME, frozenset({"db"})) as res:
        await outbox.wait_for_messages(res, 0)
        await outbox.wait_for_messages(res, outbox.BATCH)  # a full batch: no pause at all
        assert res.listeners == {}
    assert wakeups("poll") == before["poll"] + 1
    assert wakeups("backlog") == before["backlog"] + 1


async def test_a_relay_that_listens_waits_for_a_ring(stack: Stack, settings: Settings) -> None:
    engine = create_engine(settings, admin=True)
    quiet = dataclasses.replace(settings, outbox_idle_poll_s=30.0)
    try:  # amqp too: while it waits, the relay reads the dead-letter queues
        async with open_resources(quiet, NAME, frozenset({"db", "amqp"})) as res:
            listener = res.listener(outbox.CHANNEL, lambda _: None)
            assert listener is not None
            await eventually(lambda: _listening(listener), 10, "the relay's listener holds its session")
            await outbox.wait_for_messages(res, 0)  # the look on connecting
            before = wakeups("notify")
            await _insert(engine, commit=True)
            async with asyncio.timeout(10):  # far below the 30 s safety net
                await outbox.wait_for_messages(res, 0)
            assert wakeups("notify") == before + 1
    finally:
        await _forget_test_rows(engine)


async def test_a_quiet_relay_keeps_its_gauges_fresh(stack: Stack, settings: Settings) -> None:
    """Waiting for a ring, the relay still reads the backlog and the dead-letter queues: DeadLettersPresent
    resolves only when its gauge reads 0 again, and a quiet relay makes no pass to read it."""
    quiet = dataclasses.replace(settings, outbox_idle_poll_s=30.0)
    dlq = topology.dead_letter_queue(topology.PAYMENT_REQUESTS)
    async with open_resources(quiet, NAME, frozenset({"db", "amqp"})) as res:
        listener = res.listener(outbox.CHANNEL, lambda _: None)
        assert listener is not None
        await eventually(lambda: _listening(listener), 10, "the relay's listener holds its session")
        await outbox.wait_for_messages(res, 0)  # the look on connecting
        outbox.PENDING.set(-1)
        outbox.DEAD_LETTERS.labels(dlq).set(-1)

        async def wait_on() -> None:  # a ring from another writer of the test stack ends one wait only
            while True:
                await outbox.wait_for_messages(res, 0)

        waiting = asyncio.create_task(wait_on())
        try:

            async def read_again() -> bool:
                return (
                    sample("jatra_outbox_pending") >= 0
                    and sample("jatra_amqp_dead_letters", {"queue": dlq}) >= 0
                )

            await eventually(read_again, 15, "the gauges read again while the relay waits")  # not 30 s
            assert not waiting.done()  # no pass ran: the waits read them
        finally:
            waiting.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await waiting


@pytest.mark.parametrize("direct", [True, False], ids=["direct", "through-pgbouncer"])
async def test_the_relay_connection_runs_its_statements_and_comes_back(
    stack: Stack, settings: Settings, direct: bool
) -> None:
    """The relay's own connection: straight to Postgres with the statement cache, or through PgBouncer
    (transaction pooling) without it; a connection killed under it is replaced on the next pass."""
    where = settings if direct else dataclasses.replace(
        settings, database_url=settings.db_url, database_via_pgbouncer=True
    )  # fmt: skip
    relay = RelayConnection(where, NAME)
    assert relay.direct == direct
    engine = create_engine(settings, admin=True)
    try:
        for _ in range(3):  # the same statements again: prepared once direct, unnamed through PgBouncer
            async with relay.transaction() as conn:
                assert await conn.fetch(outbox.CLAIM, 0, outbox.DECLARED) == []
        async with engine.begin() as admin:
            await admin.execute(
                text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = :n"),
                {"n": f"jatra-{NAME}"},
            )
        with contextlib.suppress(Exception):  # the pass that meets the dead one (how it fails varies)
            async with relay.transaction() as conn:
                await conn.fetch(outbox.CLAIM, 0, outbox.DECLARED)
        async with relay.transaction() as conn:  # the next pass has a new connection
            assert await conn.fetch(outbox.CLAIM, 0, outbox.DECLARED) == []
    finally:
        await relay.close()
        await engine.dispose()


async def test_a_claim_marks_only_what_it_returns_and_only_when_the_pass_commits(
    stack: Stack, settings: Settings
) -> None:
    """On a temporary ``outbox`` of this session's own (it hides the real one, which the test stack's
    relays use meanwhile): a claim takes the oldest unsent rows up to its limit and marks exactly those;
    a pass that fails before its commit (a publish refused) leaves every row of its batch unsent. A row
    for an exchange the relay does not declare, the oldest here, is never claimed and holds up none."""
    conn = await asyncpg.connect(asyncpg_dsn(settings.db_listen_url))
    try:
        await conn.execute("CREATE TEMP TABLE outbox (LIKE public.outbox INCLUDING ALL)")
        insert = (
            "INSERT INTO outbox (exchange, routing_key, message_id, payload, headers)"
            " SELECT $1, 'test.outbox_claim', gen_random_uuid(), '{}', '{}' FROM generate_series(1, $2)"
        )
        await conn.execute(insert, "jatra.newer", 1)  # a newer version's exchange, say
        await conn.execute(insert, topology.EVENTS, 5)
        newer, *ids = [r["id"] for r in await conn.fetch("SELECT id FROM outbox ORDER BY id")]

        async def unsent() -> list[int]:
            return [
                r["id"] for r in await conn.fetch("SELECT id FROM outbox WHERE sent_at IS NULL ORDER BY id")
            ]

        async def claim(limit: int) -> list[int]:
            return sorted(r["id"] for r in await conn.fetch(outbox.CLAIM, limit, outbox.DECLARED))

        with contextlib.suppress(ConnectionError):
            async with conn.transaction():
                assert await claim(2) == ids[:2]
                raise ConnectionError("the broker refused a publish")
        assert await unsent() == [newer, *ids]  # nothing marked: the batch goes out again on the next pass

        async with conn.transaction():
            assert await claim(2) == ids[:2]
        assert await unsent() == [newer, *ids[2:]]
        async with conn.transaction():
            assert await claim(10) == ids[2:]
        assert await unsent() == [newer]  # left for a relay that declares its exchange
    finally:
        await conn.close()


async def test_unsent_rows_for_an_undeclared_exchange_are_measured_and_logged(
    stack: Stack, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The relays leave them (above): they count in the backlog and the lag (OutboxLagging pages), and the
    relay says which exchanges they name, once while their count stays the same."""
    logged = Logged()
    monkeypatch.setattr(outbox, "log", logged)
    monkeypatch.setattr(outbox, "_undeclared", 0)
    engine = create_engine(settings, admin=True)
    row = uuid.uuid4()
    try:
        async with engine.begin() as conn:
            await conn.execute(
                insert(OutboxMessage).values(
                    exchange="jatra.newer", routing_key="test.undeclared", message_id=row, payload={},
                    headers={}, created_at=dt.datetime.now(dt.UTC) - dt.timedelta(minutes=5),
                )
            )  # fmt: skip
        async with open_resources(settings, NAME, frozenset({"db"})) as res:
            await outbox.measure(res)
            await outbox.measure(res)
        assert sample("jatra_outbox_pending") >= 1 and sample("jatra_outbox_lag_seconds") >= 300
        assert logged.events == [
            {
                "event": "outbox.undeclared_exchange",
                "log_level": "warning",
                "unsent": 1,
                "exchanges": ["jatra.newer"],
            }
        ]
    finally:
        async with engine.begin() as conn:
            await conn.execute(delete(OutboxMessage).where(OutboxMessage.message_id == row))
        await engine.dispose()
