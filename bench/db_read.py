"""`make bench-db-read`: one read of a booking by its key, asked several ways, behind PgBouncer; and the
payment worker's first statement as it was and as it is.

The API's reads go through SQLAlchemy's ORM on asyncpg, in a transaction (BEGIN, the statement prepared
and then executed, ROLLBACK: four round trips, since PgBouncer 1.18 in transaction mode keeps no prepared
statement). This times the same read (every column of `bookings`, by primary key, 16 at a time, through
the local stack's PgBouncer) asked five ways, interleaved over rounds because this machine is shared, and
reports medians of the CPU per read of the asking process, PgBouncer and Postgres (their process trees,
from /proc):

- `sqlalchemy-asyncpg`: what Jatra does now (`AsyncSession.get`);
- `asyncpg-raw`: asyncpg itself, in a transaction (no ORM, the same four round trips);
- `sqlalchemy-psycopg`: the ORM on psycopg 3 (BEGIN, the statement, ROLLBACK: three);
- `sqlalchemy-psycopg-autocommit`: the ORM on psycopg 3 in autocommit (one round trip);
- `psycopg-autocommit`: psycopg 3 itself in autocommit: Parse, Bind, Execute and Sync sent together, one
  round trip, which PgBouncer's transaction mode allows (one Sync, no transaction left open);
- `jatra-outcome`: the outcome's read as the API asks it now (`jatra.bookings.repository.outcome` through
  `jatra.infra.pg`: psycopg in autocommit, a pool, a row built as a dataclass);
- `start-before` / `start-now`: the payment worker's first statement (`jatra.payments.repository.START`,
  a locked read and an update in one statement) as it was asked (SQLAlchemy on asyncpg, inside BEGIN and
  COMMIT behind PgBouncer) and as it is (`jatra.payments.repository.start` through `jatra.infra.pg`). On
  a settled booking it locks the row and writes nothing, so it can be asked again and again.

`BENCH_DB_WAYS` (comma-separated) picks ways, `BENCH_DB_READ_OUT` the output file. Needs the local stack
with some bookings (run a rush first). Writes bench/results/db-read.json.
"""

from __future__ import annotations

import asyncio
import json
import os
import statistics
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import psycopg
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from jatra.bookings import repository as bookings
from jatra.db.bookings import Booking
from jatra.infra.db import create_engine, session_factory
from jatra.infra.pg import Statements
from jatra.payments import repository as payments
from jatra.rush.cpu import cpu_seconds
from jatra.settings import get_settings

ROOT = Path(__file__).resolve().parent.parent
READS = int(os.environ.get("BENCH_DB_READS", "4000"))
ROUNDS = int(os.environ.get("BENCH_DB_ROUNDS", "5"))
CONCURRENCY = 16
SETTINGS = get_settings()
PSYCOPG_URL = f"postgresql+psycopg://jatra@127.0.0.1:{SETTINGS.port_base + 11}/jatra"
COLUMNS = ", ".join(c.name for c in Booking.__table__.columns)
Read = Callable[[Any], Awaitable[None]]


async def _orm(engine: Any) -> tuple[Read, Callable[[], Awaitable[None]]]:
    factory = session_factory(engine)

    async def read(key: Any) -> None:
        async with factory() as session:
            await session.get(Booking, key, populate_existing=True)

    return read, engine.dispose


async def _asyncpg_raw() -> tuple[Read, Callable[[], Awaitable[None]]]:
    engine = create_engine(SETTINGS, pool_size=CONCURRENCY)
    sql = f"SELECT {COLUMNS} FROM bookings WHERE id = $1"  # noqa: S608 (column names from the model)

    async def read(key: Any) -> None:
        async with engine.connect() as conn:
            raw = (await conn.get_raw_connection()).driver_connection
            async with raw.transaction():
                await raw.fetchrow(sql, key)

    return read, engine.dispose


async def _psycopg_autocommit() -> tuple[Read, Callable[[], Awaitable[None]]]:
    idle: asyncio.Queue[psycopg.AsyncConnection[Any]] = asyncio.Queue()
    for _ in range(CONCURRENCY):
        idle.put_nowait(
            await psycopg.AsyncConnection.connect(
                host="127.0.0.1",
                port=SETTINGS.port_base + 11,
                user="jatra",
                dbname="jatra",
                autocommit=True,
                prepare_threshold=None,
            )
        )
    sql = f"SELECT {COLUMNS} FROM bookings WHERE id = %s"  # noqa: S608 (column names from the model)

    async def read(key: Any) -> None:
        conn = await idle.get()
        try:
            await (await conn.execute(sql, (key,))).fetchone()
        finally:
            idle.put_nowait(conn)

    async def close() -> None:
        while not idle.empty():
            await idle.get_nowait().close()

    return read, close


def _psycopg_engine(autocommit: bool) -> Any:
    extra = {"isolation_level": "AUTOCOMMIT"} if autocommit else {}
    return create_async_engine(
        PSYCOPG_URL, pool_size=CONCURRENCY, connect_args={"prepare_threshold": None}, **extra
    )


async def _jatra(
    ask: Callable[[Statements, Any], Awaitable[object]],
) -> tuple[Read, Callable[[], Awaitable[None]]]:
    pg = Statements(SETTINGS, "bench", size=CONCURRENCY, timeout_s=30)
    await pg.open()

    async def read(key: Any) -> None:
        await ask(pg, key)

    return read, pg.close


async def _start_before() -> tuple[Read, Callable[[], Awaitable[None]]]:
    """The START statement as the payment worker asked it before (``one_statement`` behind PgBouncer)."""
    engine = create_engine(SETTINGS, pool_size=CONCURRENCY)
    sql = text(payments.START.replace("%(booking_id)s", ":booking_id"))

    async def read(key: Any) -> None:
        async with engine.connect() as conn, conn.begin():
            (await conn.execute(sql, {"booking_id": key})).first()

    return read, engine.dispose


WAYS: dict[str, Callable[[], Awaitable[tuple[Read, Callable[[], Awaitable[None]]]]]] = {
    "sqlalchemy-asyncpg": lambda: _orm(create_engine(SETTINGS, pool_size=CONCURRENCY)),
    "asyncpg-raw": _asyncpg_raw,
    "sqlalchemy-psycopg": lambda: _orm(_psycopg_engine(autocommit=False)),
    "sqlalchemy-psycopg-autocommit": lambda: _orm(_psycopg_engine(autocommit=True)),
    "psycopg-autocommit": _psycopg_autocommit,
    "jatra-outcome": lambda: _jatra(bookings.outcome),
    "start-before": _start_before,
    "start-now": lambda: _jatra(payments.start),
}
CHOSEN = [w for w in os.environ.get("BENCH_DB_WAYS", ",".join(WAYS)).split(",") if w]


async def _keys() -> list[Any]:
    engine = create_engine(SETTINGS, admin=True)
    async with engine.connect() as conn:
        keys = list((await conn.execute(text("SELECT id FROM bookings LIMIT 200"))).scalars())
    await engine.dispose()
    if not keys:
        raise SystemExit("no bookings in the local stack: run a rush first (jatra rush)")
    return keys


async def one(way: str, keys: list[Any], pgbouncer: int, postgres: int) -> dict[str, float]:
    read, close = await WAYS[way]()

    async def worker(offset: int, n: int) -> None:
        for i in range(n):
            await read(keys[(offset * 7 + i) % len(keys)])

    try:
        await asyncio.gather(*(worker(i, 20) for i in range(CONCURRENCY)))  # connect, warm up
        mine, bouncer, server = time.process_time(), cpu_seconds(pgbouncer), cpu_seconds(postgres)
        await asyncio.gather(*(worker(i, READS // CONCURRENCY) for i in range(CONCURRENCY)))
        n = READS // CONCURRENCY * CONCURRENCY
        return {
            "client_ms": round((time.process_time() - mine) * 1000 / n, 3),
            "pgbouncer_ms": round((cpu_seconds(pgbouncer) - bouncer) * 1000 / n, 3),
            "postgres_ms": round((cpu_seconds(postgres) - server) * 1000 / n, 3),
        }
    finally:
        await close()


async def main() -> None:
    keys = await _keys()
    stack = json.loads((SETTINGS.state_dir / "stack.json").read_text())  # what `jatra up` started
    pids = {name: int(stack[name]["pids"][0]) for name in ("pgbouncer", "postgres")}  # their trees
    runs: dict[str, list[dict[str, float]]] = {way: [] for way in CHOSEN}
    for round_ in range(ROUNDS):
        for way, done in runs.items():
            done.append(result := await one(way, keys, pids["pgbouncer"], pids["postgres"]))
            print(f"round {round_ + 1} {way}: {result}", flush=True)  # noqa: T201
    summary = {
        way: {stat: statistics.median(r[stat] for r in rs) for stat in rs[0]} for way, rs in runs.items()
    }
    for stats in summary.values():
        stats["total_ms"] = round(sum(stats.values()), 3)
    for way, stats in summary.items():  # a read against the ORM's, the worker's statement against its past
        base = summary.get("start-before" if way.startswith("start-") else "sqlalchemy-asyncpg")
        if base is not None:
            stats["ratio_to_before"] = round(stats["total_ms"] / base["total_ms"], 3)
    out = ROOT / os.environ.get("BENCH_DB_READ_OUT", "bench/results/db-read.json")
    out.write_text(json.dumps({"reads_per_run": READS, "concurrency": CONCURRENCY, "summary": summary,
                               "runs": runs}, indent=2))  # fmt: skip
    print(json.dumps(summary, indent=2))  # noqa: T201


if __name__ == "__main__":
    asyncio.run(main())
