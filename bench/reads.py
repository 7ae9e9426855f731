"""`make bench-reads`: the passenger's reads after booking, served by one API process: CPU per request.

A passenger who has booked asks for the outcome (`GET /bookings/{id}`) and downloads the e-ticket
(`GET /bookings/{id}/ticket.pdf`), one of each per booking. One API process (uvicorn + httptools + uvloop,
every service in it, the local stack's servers behind it, telemetry at the production default) serves
each read from 32 connections, for confirmed bookings already in the local stack (run a rush first); the
server's CPU per request (its process tree, from /proc) and the latencies are recorded, as in
`make bench-servers`.

`BENCH_BASELINE_TREE=/path/to/another/checkout` serves the same reads with that tree's code too (a
`git worktree` of the commit before a change), interleaved with this tree's over rounds (A B A B ...),
because this machine is shared: medians are reported. Writes bench/results/reads.json (or
`BENCH_READS_OUT`).
"""

from __future__ import annotations

import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path
from typing import Any

import aiohttp
from bench.servers import CONCURRENCY, NO_ADMISSION, PORT, _ready
from bench.servers import _measure as measure
from sqlalchemy import text

from jatra.auth.tokens import access_token
from jatra.infra.db import create_engine
from jatra.infra.secrets import jwt_secret
from jatra.settings import get_settings

ROOT = Path(__file__).resolve().parent.parent
ROUNDS = int(os.environ.get("BENCH_SERVER_ROUNDS", "3"))
BOOKINGS = 64
TELEMETRY = {"JATRA_TELEMETRY_ENABLED": "true", "JATRA_TRACE_SAMPLE_RATIO": "0.1"}


async def _confirmed() -> tuple[str, list[str]]:
    """The account with the most confirmed bookings in the local stack, a fresh token for it, and up to
    BOOKINGS of its bookings."""
    settings = get_settings()
    engine = create_engine(settings, admin=True)
    async with engine.connect() as conn:
        user = (
            await conn.execute(
                text(
                    "SELECT user_id FROM bookings WHERE status = 'CONFIRMED' GROUP BY user_id "
                    "ORDER BY count(*) DESC LIMIT 1"
                )
            )
        ).scalar_one_or_none()
        if user is None:
            raise SystemExit("no confirmed booking in the local stack: run a rush first (jatra rush)")
        ids = (
            await conn.execute(
                text("SELECT id FROM bookings WHERE user_id = :u AND status = 'CONFIRMED' LIMIT :n"),
                {"u": user, "n": BOOKINGS},
            )
        ).scalars()
        bookings = [str(i) for i in ids]
    await engine.dispose()
    token = access_token(jwt_secret(settings), user, "passenger", uuid.uuid4(), 3600)
    return token, bookings


async def _measure(http: aiohttp.ClientSession, base: str, pid: int, paths: list[str]) -> dict[str, Any]:
    """`make bench-servers`' measurement, after one request per path: every ticket rendered into this
    tree's cache first (a tree before the change keeps them under another key), none in the measured
    window. Every answer must be a 200: a refusal would be measured as a cheap request."""

    async def once(path: str) -> None:
        async with http.get(base + path) as r:
            await r.read()

    await asyncio.gather(*(once(path) for path in paths))
    result = await measure(http, base, pid, paths)
    if set(result["statuses"]) != {200}:
        raise SystemExit(f"not every read was answered 200: {result['statuses']} (for {paths[0]} ...)")
    return result


async def _drive(pid: int, token: str, bookings: list[str]) -> dict[str, Any]:
    base = f"http://127.0.0.1:{PORT}"
    headers = {"Authorization": f"Bearer {token}"}
    connector = aiohttp.TCPConnector(limit=CONCURRENCY)
    async with aiohttp.ClientSession(connector=connector, headers=headers) as http:
        await _ready(http, base)
        return {
            "ticket": await _measure(http, base, pid, [f"/api/v1/bookings/{b}/ticket.pdf" for b in bookings]),
            "outcome": await _measure(http, base, pid, [f"/api/v1/bookings/{b}" for b in bookings]),
        }


def one(tree: Path, token: str, bookings: list[str], traces: str) -> dict[str, Any]:
    env = {**os.environ, **NO_ADMISSION, **TELEMETRY, "JATRA_TRACE_DIR": traces,
           "JATRA_STATE_DIR": str(get_settings().state_dir.resolve()),  # the same stack, keys and secrets
           "PYTHONPATH": f"{tree}:{tree / 'platform'}"}  # fmt: skip
    cmd = [sys.executable, "-m", "bench.servers", "uvicorn", "uvloop"]
    proc = subprocess.Popen(cmd, cwd=tree, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        return asyncio.run(_drive(proc.pid, token, bookings))
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def main() -> None:
    token, bookings = asyncio.run(_confirmed())
    trees = {"this": ROOT}
    if baseline := os.environ.get("BENCH_BASELINE_TREE"):
        trees = {"baseline": Path(baseline).resolve(), "this": ROOT}
    runs: dict[str, list[dict[str, Any]]] = {name: [] for name in trees}
    with tempfile.TemporaryDirectory(prefix="jatra-bench-traces-") as traces:
        for round_ in range(ROUNDS):
            for name, tree in trees.items():
                runs[name].append(result := one(tree, token, bookings, traces))
                cpu = {read: r["server_cpu_ms_per_request"] for read, r in result.items()}
                print(f"round {round_ + 1} {name}: {cpu} ms per request", flush=True)  # noqa: T201
    summary = {
        name: {
            read: {
                stat: statistics.median(r[read][stat] for r in rs)
                for stat in ("server_cpu_ms_per_request", "p50_ms", "p99_ms")
            }
            for read in ("ticket", "outcome")
        }
        for name, rs in runs.items()
    }
    out = ROOT / os.environ.get("BENCH_READS_OUT", "bench/results/reads.json")
    out.write_text(
        json.dumps({"rounds": ROUNDS, "bookings": len(bookings), "summary": summary, "runs": runs}, indent=2)
    )
    print(json.dumps(summary, indent=2))  # noqa: T201


if __name__ == "__main__":
    main()
