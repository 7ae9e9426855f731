"""A process warms up before it serves: its pools open connections and the seats service reads every
train's layout, in four statements that give what the per-train read gives. A part that fails or hangs
is logged and left cold; the process starts all the same. Against the test stack's servers."""

from __future__ import annotations

import asyncio
import dataclasses
import gc
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
from litestar.testing import AsyncTestClient
from prometheus_client import REGISTRY
from sqlalchemy import func, select

from jatra import worker
from jatra.app import create_app
from jatra.db.catalog import Train
from jatra.infra import warmup
from jatra.infra.resources import Resources, open_resources
from jatra.seats import controllers as seats
from jatra.seats import repository
from jatra.settings import Settings
from jatra.stack.manager import Stack
from jatra.telemetry import gc_pauses
from tests.fixtures.logs import Logged

pytestmark = pytest.mark.integration


@pytest.fixture
async def res(stack: Stack, settings: Settings) -> AsyncIterator[Resources]:
    async with open_resources(settings, "warmup-test", frozenset({"db", "redis"})) as resources:
        yield resources


def counted(part: str, outcome: str) -> float:
    labels = {"part": part, "outcome": outcome}
    return REGISTRY.get_sample_value("jatra_warmup_parts_total", labels) or 0.0


@pytest.fixture
def logged(monkeypatch: pytest.MonkeyPatch) -> Logged:
    found = Logged()
    monkeypatch.setattr(warmup, "log", found)
    return found


def _open(res: Resources) -> dict[str, int]:
    """How many connections each of the process's pools holds now."""
    assert res.engine is not None and res.pg is not None and res.redis is not None
    pool: Any = res.engine.pool
    return {
        "db": pool.checkedin() + pool.checkedout(),
        "statements": res.statements().pool.get_stats()["pool_size"],
        "redis": len(res.redis.connection_pool._available_connections),  # no public count
    }


async def test_warm_opens_the_pools_and_reads_every_train(res: Resources, logged: Logged) -> None:
    repository._trains.clear()
    assert _open(res) == {"db": 0, "statements": 0, "redis": 0}
    async with res.db()() as session:
        trains = await session.scalar(select(func.count()).select_from(Train))
    parts = ("db_connections", "statement_connections", "redis_connections", "seats")
    before = {p: counted(p, "ok") for p in parts}
    done = await warmup.warm(res, [("seats", seats.warm)])
    assert {p: counted(p, "ok") - before[p] for p in parts} == dict.fromkeys(parts, 1.0)
    n = warmup.CONNECTIONS
    assert done == {"db_connections": n, "statement_connections": n, "redis_connections": n, "seats": trains}
    opened = _open(res)
    # the seats warmer's session runs beside the pool's, and may hold one more
    assert opened["db"] in (n, n + 1) and opened["statements"] == n and opened["redis"] == n
    assert len(repository._trains) == trains
    [event] = logged.events
    assert event["event"] == "warmup.done" and event["warmed"] == done and event["duration_ms"] > 0


async def test_the_layouts_read_at_once_are_those_read_one_by_one(res: Resources) -> None:
    repository._trains.clear()
    async with res.db()() as session:
        count = await repository.preload_trains(session)
        preloaded = dict(repository._trains._items)
        assert count == len(preloaded) > 0
        for number, layout in preloaded.items():
            repository._trains.clear()
            one = await repository.train_layout(session, number)
            assert one == layout, number
            assert list(one.seats) == list(layout.seats)  # the seat map's order is the layout's


async def test_a_part_that_fails_or_hangs_is_logged_and_the_rest_is_done(
    res: Resources, logged: Logged, monkeypatch: pytest.MonkeyPatch
) -> None:
    # long enough for the real parts' pools (12 connections) on a loaded machine; the hanging part sleeps 60 s
    monkeypatch.setattr(warmup, "TIMEOUT_S", 3.0)

    async def broken(_: Resources) -> int:
        raise RuntimeError("no")

    async def hangs(_: Resources) -> int:
        await asyncio.sleep(60)
        return 1

    before = counted("broken", "failed")
    done = await warmup.warm(res, [("broken", broken), ("hangs", hangs)])
    assert counted("broken", "failed") == before + 1
    assert set(done) == {"db_connections", "statement_connections", "redis_connections"}
    failed = {e["part"]: e["error"] for e in logged.events if e["event"] == "warmup.failed"}
    assert failed == {"broken": "RuntimeError", "hangs": "TimeoutError"}


async def test_a_process_whose_database_is_down_starts_cold(
    stack: Stack, settings: Settings, logged: Logged
) -> None:
    broken = dataclasses.replace(
        settings, database_url="postgresql+asyncpg://jatra@127.0.0.1:1/jatra", dependency_timeout_s=0.3
    )
    async with AsyncTestClient(app=create_app(["all"], broken)) as client:
        assert (await client.get("/health")).status_code == 200
        assert (await client.get("/ready")).status_code == 503
    failed = {e["part"] for e in logged.events if e["event"] == "warmup.failed"}
    assert failed == {"db_connections", "statement_connections", "seats"}
    [done] = [e for e in logged.events if e["event"] == "warmup.done"]
    assert done["warmed"]["redis_connections"] == warmup.CONNECTIONS


async def test_a_dependency_that_never_answers_holds_the_start_no_longer_than_the_bound(
    settings: Settings, logged: Logged, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Postgres and Redis behind a listener that accepts and never answers: every part is given up at the
    bound (its cancellation included), and the warm-up returns."""
    monkeypatch.setattr(warmup, "TIMEOUT_S", 1.0)
    accepted: list[asyncio.StreamWriter] = []

    async def hold(_: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        accepted.append(writer)

    server = await asyncio.start_server(hold, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    silent = dataclasses.replace(
        settings,
        database_url=f"postgresql+asyncpg://jatra@127.0.0.1:{port}/jatra",
        redis_url=f"redis://127.0.0.1:{port}/0",
        dependency_timeout_s=30.0,  # the warm-up's own bound must be what ends it
    )
    try:
        async with open_resources(silent, "warmup-silent", frozenset({"db", "redis"})) as res:
            started = time.monotonic()
            done = await warmup.warm(res, [("seats", seats.warm)])
            elapsed = time.monotonic() - started
    finally:
        for writer in accepted:
            writer.close()
        server.close()
    assert done == {}
    assert accepted  # the parts did reach the listener
    failed = {e["part"]: e["error"] for e in logged.events if e["event"] == "warmup.failed"}
    assert set(failed) == {"db_connections", "statement_connections", "redis_connections", "seats"}
    assert set(failed.values()) == {"TimeoutError"}
    assert elapsed < warmup.TIMEOUT_S + 4  # the bound, and the cancelled parts' cleanup; not 30 s


#: what the pools held when a worker's first pass began (filled by ``_first_pass``)
_at_first_pass: list[dict[str, int]] = []
_first_pass_seen = asyncio.Event()


async def _first_pass(res: Resources) -> int:
    _at_first_pass.append(_open(res))
    _first_pass_seen.set()
    return 0


@pytest.mark.parametrize("warm", [True, False], ids=["warmed", "cold"])
async def test_a_consumer_takes_its_first_message_with_its_pools_open(
    stack: Stack, settings: Settings, logged: Logged, warm: bool
) -> None:
    """The payment and notifications workers open their statements' and Redis's pools before their first
    pass (the ORM's pool stays closed: their messages do not use it); a worker that does not warm opens
    them as its work needs them."""
    assert worker.WORKERS["payments"].warm and worker.WORKERS["notifications"].warm
    spec = dataclasses.replace(worker.WORKERS["payments"], iteration=f"{__name__}:_first_pass", warm=warm)
    _at_first_pass.clear()
    _first_pass_seen.clear()
    async with open_resources(settings, "warmup-worker", spec.needs, db_pool=spec.db_pool) as res:
        loop = asyncio.create_task(worker._loop("warmup-worker", spec, res))
        try:
            await asyncio.wait_for(_first_pass_seen.wait(), 15)
        finally:
            loop.cancel()
            await asyncio.gather(loop, return_exceptions=True)
    n = min(warmup.CONNECTIONS, spec.db_pool)
    expected = (
        {"db": 0, "statements": n, "redis": warmup.CONNECTIONS}
        if warm
        else dict.fromkeys(("db", "statements", "redis"), 0)
    )
    assert _at_first_pass == [expected]
    warmed = [e["warmed"] for e in logged.events if e["event"] == "warmup.done"]
    assert warmed == ([{"statement_connections": n, "redis_connections": warmup.CONNECTIONS}] if warm else [])


@pytest.mark.parametrize("freeze", [True, False], ids=["frozen", "not-frozen"])
async def test_a_warmed_process_freezes_what_it_holds_only_when_told_to(
    stack: Stack, settings: Settings, freeze: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With ``JATRA_GC_FREEZE=true``, an API process and a worker move what they hold out of the garbage
    collector's later collections (``gc.freeze``) once warmed up; by default they do not."""
    assert not Settings().gc_freeze  # off unless asked for
    chosen = dataclasses.replace(settings, gc_freeze=freeze)
    frozen: list[int] = []
    try:
        monkeypatch.setattr(gc_pauses, "_frozen", False)
        gc.unfreeze()
        async with AsyncTestClient(app=create_app(["all"], chosen)) as client:
            assert (await client.get("/health")).status_code == 200
            frozen.append(gc.get_freeze_count())
        monkeypatch.setattr(gc_pauses, "_frozen", False)
        gc.unfreeze()
        spec = dataclasses.replace(worker.WORKERS["payments"], iteration=f"{__name__}:_first_pass")
        _first_pass_seen.clear()
        async with open_resources(chosen, "freeze-worker", spec.needs, db_pool=spec.db_pool) as res:
            loop = asyncio.create_task(worker._loop("freeze-worker", spec, res, freeze=freeze))
            try:
                await asyncio.wait_for(_first_pass_seen.wait(), 15)
            finally:
                loop.cancel()
                await asyncio.gather(loop, return_exceptions=True)
        frozen.append(gc.get_freeze_count())
    finally:
        gc.unfreeze()
    if freeze:
        assert min(frozen) > 10_000  # every module, class and function at least
    else:
        assert frozen == [0, 0]
