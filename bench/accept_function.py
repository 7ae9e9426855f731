"""`make bench-accept`: the booking's statement asked as its text, as it was, and as the function that
migration 0008 made of it, as it is now, behind the local stack's PgBouncer as the API asks it.

PgBouncer 1.18's transaction pooling keeps nothing the client prepares, so the statement's text was parsed
and planned by Postgres for each booking; a PL/pgSQL function's statements are planned once per server
connection. Each way runs the same transaction, as the API's (``jatra.infra.pg.Statements.transaction``),
16 at a time: BEGIN, a hold row, the booking's statement on it, ROLLBACK (so nothing stays). The ways are
interleaved over rounds (this machine is shared); reported are medians of the CPU per transaction of
Postgres, PgBouncer and this process (their process trees, from /proc). The hold's insert and the
rollback are the same in both ways, so the difference is the statement's.

`BENCH_ACCEPT_ROUNDS`, `BENCH_ACCEPT_N` (transactions per way and round). Needs the local stack with a
journey, a seat and a user (`jatra seed`). Writes bench/results/accept-function/accept-function.json.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import importlib.util
import json
import os
import re
import statistics
import time
import uuid
from pathlib import Path
from typing import Any, LiteralString, cast

from psycopg.types.json import Jsonb

from jatra.bookings import repository
from jatra.infra import idempotency
from jatra.infra.pg import Statements
from jatra.inventory.status import HoldStatus
from jatra.rush.cpu import cpu_seconds
from jatra.seats import repository as seats
from jatra.seats.repository import NewHold
from jatra.settings import get_settings

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "bench" / "results" / "accept-function" / "accept-function.json"
ROUNDS = int(os.environ.get("BENCH_ACCEPT_ROUNDS", "5"))
N = int(os.environ.get("BENCH_ACCEPT_N", "1500"))
CONCURRENCY = 16
SETTINGS = get_settings()
MIGRATION = ROOT / "platform" / "jatra" / "db" / "migrations" / "versions" / "0008_accept_booking_function.py"


def statement_as_it_was() -> str:
    """The function's statement with its arguments as the parameters the API sent before migration 0008."""
    spec = importlib.util.spec_from_file_location("accept_migration", MIGRATION)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    body = str(module.FUNCTION).split("RETURN QUERY", 1)[1].rsplit(";\nEND", 1)[0]
    return re.sub(r"\bp_(\w+)", r"%(\1)s", body)


async def _sample(pg: Statements) -> dict[str, Any]:
    row = await pg.one(
        "SELECT j.id AS journey_id, s.id AS seat_id, (SELECT id FROM users LIMIT 1) AS user_id"
        " FROM journeys j JOIN coaches c ON c.train_number = j.train_number JOIN seats s ON s.coach_id = c.id"
        " LIMIT 1",
        {},
        dict,
    )
    assert row is not None, "no journey, seat or user: run `jatra seed` first"
    return row


async def _transaction(pg: Statements, sql: str, base: dict[str, Any]) -> None:
    hold_id = uuid.uuid4()
    async with pg.transaction() as tx:
        hold = NewHold(
            id=hold_id, journey_id=base["journey_id"], user_id=base["user_id"], seat_ids=[base["seat_id"]],
            from_seq=1, to_seq=2, seat_class="S_CHAIR", status=HoldStatus.ACTIVE,
            expires_at=dt.datetime.now(dt.UTC) + dt.timedelta(minutes=10), total_fare=100,
        )  # fmt: skip
        # the hold's record as the API writes it (its own call, here inside the transaction)
        await seats.record_hold(tx, hold)  # type: ignore[arg-type]  # a Transaction asks as Statements do
        params = {
            "hold_id": hold_id, "user_id": base["user_id"], "seats": 1, "booking_id": uuid.uuid4(),
            "location": Jsonb({"Location": "/api/v1/bookings/x"}), "passengers": Jsonb([{"name": "A"}]),
            "method": "bkash", "email": None, "key": str(uuid.uuid4()), "digest": "d",
            **idempotency.claim_times(), "exchange": "payments", "routing_key": "payment.requested",
            "message_id": uuid.uuid4(), "trace": Jsonb({}),
        }  # fmt: skip
        accepted = await tx.one(cast(LiteralString, sql), params, dict)
        assert accepted is not None and accepted["journey_id"] == base["journey_id"], accepted
        tx.undo()


async def _way(pg: Statements, sql: str, base: dict[str, Any], pids: dict[str, int]) -> dict[str, float]:
    queue: asyncio.Queue[None] = asyncio.Queue()
    for _ in range(N):
        queue.put_nowait(None)

    async def worker() -> None:
        while not queue.empty():
            queue.get_nowait()
            await _transaction(pg, sql, base)

    before = {name: cpu_seconds(pid) for name, pid in pids.items()}
    process = time.process_time()
    await asyncio.gather(*(worker() for _ in range(CONCURRENCY)))
    spent = {name: cpu_seconds(pid) - before[name] for name, pid in pids.items()}
    spent["client"] = time.process_time() - process
    return {name: round(1e6 * s / N, 1) for name, s in spent.items()}


async def main() -> None:
    stack = json.loads((SETTINGS.state_dir / "stack.json").read_text())  # what `jatra up` started
    pids = {name: int(stack[name]["pids"][0]) for name in ("postgres", "pgbouncer")}  # their trees
    pg = Statements(SETTINGS, "bench-accept", size=CONCURRENCY, timeout_s=30)
    await pg.open()
    ways = {"statement": statement_as_it_was(), "function": repository.ACCEPT}
    runs: dict[str, list[dict[str, float]]] = {way: [] for way in ways}
    try:
        base = await _sample(pg)
        for sql in ways.values():  # warm: pools, and the function's plan on each server connection
            for _ in range(4 * CONCURRENCY):
                await _transaction(pg, sql, base)
        for round_ in range(ROUNDS):
            order = list(ways) if round_ % 2 == 0 else list(reversed(ways))
            for way in order:
                runs[way].append(await _way(pg, ways[way], base, pids))
                print(f"round {round_ + 1} {way}: {runs[way][-1]}", flush=True)  # noqa: T201
    finally:
        await pg.close()
    medians = {
        way: {name: statistics.median(r[name] for r in rs) for name in rs[0]} for way, rs in runs.items()
    }
    result = {
        "unit": "CPU microseconds per transaction (BEGIN, a hold row, the booking's statement, ROLLBACK)",
        "rounds": ROUNDS, "transactions_per_way_and_round": N, "concurrency": CONCURRENCY,
        "medians": medians, "runs": runs,
    }  # fmt: skip
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps(medians, indent=1))  # noqa: T201


if __name__ == "__main__":
    asyncio.run(main())
