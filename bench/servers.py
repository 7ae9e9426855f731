"""`make bench-servers`: the HTTP server and event loop of an API process, chosen by numbers.

The same Jatra API (every service in one process, the local stack's Postgres, Redis and RabbitMQ behind it)
served one process at a time by: uvicorn + httptools on uvloop (what Jatra runs), the same with each
response's head and body in two sends (uvicorn's own way, before
``jatra.infra.http_server.CorkedTransport``), uvicorn + httptools on asyncio's own loop, and Granian
(Rust HTTP, ASGI interface) on uvloop. Each serves the same read mix a passenger makes before holding
(journey search, then the seat map) from 32 concurrent connections; the server's CPU per request (its
process tree, from /proc) and the client's latencies are recorded. Servers alternate over rounds (A B C A
B C ...) because this machine is shared; medians are reported.

JSON is not compared: Litestar encodes with msgspec, the fastest encoder there is for Python, and the
generator decodes with it too. Writes bench/results/servers.json.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import aiohttp

from jatra.app import create_app
from jatra.infra.http_server import server_config
from jatra.rush.cpu import cpu_seconds
from jatra.settings import get_settings

ROOT = Path(__file__).resolve().parent.parent
PORT = int(os.environ.get("BENCH_SERVER_PORT", "17099"))
REQUESTS = int(os.environ.get("BENCH_SERVER_REQUESTS", "4000"))
ROUNDS = int(os.environ.get("BENCH_SERVER_ROUNDS", "3"))
CONCURRENCY = 32
#: admission control off: it would refuse part of 32 concurrent searches, and a refusal costs next to nothing
NO_ADMISSION = {"JATRA_ADMISSION_NEW_LIMIT": "0", "JATRA_ADMISSION_LIMIT": "0"}
ENV = {**os.environ, **NO_ADMISSION, "PYTHONPATH": f"{ROOT}:{ROOT / 'platform'}"}
SERVERS: dict[str, list[str]] = {
    "uvicorn-httptools-uvloop": [sys.executable, "-m", "bench.servers", "uvicorn", "uvloop"],
    # the same, each response's head and body in two sends, as uvicorn writes them (JATRA_HTTP_CORK=false)
    "uvicorn-httptools-uvloop-uncorked": [sys.executable, "-m", "bench.servers", "uvicorn", "uvloop"],
    "uvicorn-httptools-asyncio": [sys.executable, "-m", "bench.servers", "uvicorn", "asyncio"],
    "granian-asgi-uvloop": [
        str(Path(sys.executable).parent / "granian"),
        "--interface", "asgi", "--factory", "--loop", "uvloop", "--workers", "1",
        "--host", "127.0.0.1", "--port", str(PORT), "--log-level", "warning", "--no-ws",
        "bench.servers:granian_app",
    ],
}  # fmt: skip


def granian_app() -> Any:
    """Granian's factory: the API as `jatra serve` builds it."""
    return create_app(("all",), get_settings())


def serve_uvicorn(loop: str) -> None:
    import uvicorn  # noqa: PLC0415

    settings = get_settings()
    app = create_app(("all",), settings)
    uvicorn.Server(server_config(app, settings, host="127.0.0.1", port=PORT, loop=loop)).run()


async def _ready(http: aiohttp.ClientSession, base: str) -> None:
    for _ in range(300):
        try:
            async with http.get(f"{base}/health") as r:
                if r.status == 200:
                    return
        except aiohttp.ClientError:
            pass
        await asyncio.sleep(0.1)
    raise RuntimeError("the server did not answer /health in 30 s")


async def _paths(http: aiohttp.ClientSession, base: str) -> list[str]:
    """Searches of a few routes for tomorrow, then the seat map of each journey found."""
    day = (dt.datetime.now(ZoneInfo("Asia/Dhaka")) + dt.timedelta(days=1)).date().isoformat()
    searches = [f"/api/v1/journeys?from={a}&to={b}&date={day}" for a, b in (("DA", "CGP"), ("DA", "SYT"))]
    paths = list(searches)
    for path in searches:
        async with http.get(base + path) as r:
            body = await r.json()
        route = path.split("?")[1].split("&date")[0]
        paths += [f"/api/v1/journeys/{j['journey_id']}/seats?{route}" for j in body["journeys"][:4]]
    return paths


async def drive(pid: int) -> dict[str, Any]:
    """The passenger's read mix, then /health alone (the server and framework with no work behind)."""
    base = f"http://127.0.0.1:{PORT}"
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=CONCURRENCY)) as http:
        await _ready(http, base)
        return {
            "search_and_seat_map": await _measure(http, base, pid, await _paths(http, base)),
            "health": await _measure(http, base, pid, ["/health"]),
        }


async def _measure(http: aiohttp.ClientSession, base: str, pid: int, paths: list[str]) -> dict[str, Any]:
    latencies: list[float] = []
    statuses: dict[int, int] = {}

    async def worker(offset: int, n: int, record: bool) -> None:
        for i in range(n):
            t0 = time.perf_counter()
            async with http.get(base + paths[(offset + i) % len(paths)]) as r:
                await r.read()
            if record:
                latencies.append(time.perf_counter() - t0)
                statuses[r.status] = statuses.get(r.status, 0) + 1

    per = REQUESTS // CONCURRENCY
    await asyncio.gather(*(worker(i, 20, False) for i in range(CONCURRENCY)))  # warm caches and pools
    start = cpu_seconds(pid)
    t0 = time.perf_counter()
    await asyncio.gather(*(worker(i, per, True) for i in range(CONCURRENCY)))
    wall = time.perf_counter() - t0
    cpu_s = cpu_seconds(pid) - start
    q = statistics.quantiles(latencies, n=100, method="inclusive")
    return {
        "requests": len(latencies),
        "statuses": statuses,
        "server_cpu_ms_per_request": round(cpu_s * 1000 / len(latencies), 3),
        "requests_per_second": round(len(latencies) / wall, 1),
        "p50_ms": round(q[49] * 1000, 2),
        "p99_ms": round(q[98] * 1000, 2),
    }


#: settings a server runs with besides ENV
SERVER_ENV: dict[str, dict[str, str]] = {"uvicorn-httptools-uvloop-uncorked": {"JATRA_HTTP_CORK": "false"}}


def one(name: str) -> dict[str, Any]:
    env = {**ENV, **SERVER_ENV.get(name, {})}
    proc = subprocess.Popen(SERVERS[name], cwd=ROOT, env=env, stdout=subprocess.DEVNULL)
    try:
        return asyncio.run(drive(proc.pid))
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def main() -> None:
    only = [n for n in os.environ.get("BENCH_SERVERS", "").split(",") if n] or list(SERVERS)
    runs: dict[str, list[dict[str, Any]]] = {name: [] for name in SERVERS if name in only}
    for round_ in range(ROUNDS):
        for name, done in runs.items():
            result = one(name)
            done.append(result)
            print(f"round {round_ + 1} {name}: {result}")  # noqa: T201
    stats = ("server_cpu_ms_per_request", "requests_per_second", "p50_ms", "p99_ms")
    summary = {
        name: {
            mix: {stat: statistics.median(r[mix][stat] for r in rs) for stat in stats}
            for mix in ("search_and_seat_map", "health")
        }
        | {"runs": rs}
        for name, rs in runs.items()
    }
    out = ROOT / os.environ.get("BENCH_SERVER_OUT", "bench/results/servers.json")
    out.write_text(
        json.dumps({"requests_per_run": REQUESTS, "concurrency": CONCURRENCY, **summary}, indent=2)
    )
    print(json.dumps({n: {k: v for k, v in s.items() if k != "runs"} for n, s in summary.items()}, indent=2))  # noqa: T201


if __name__ == "__main__":
    if sys.argv[1:2] == ["uvicorn"]:
        serve_uvicorn(sys.argv[2])
    else:
        main()
