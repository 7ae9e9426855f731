"""Where the time goes (`make profile`): py-spy samples every Jatra process during a rush.

It runs a short `jatra rush` first to warm the processes up (pools opened, layouts and caches filled), then
another in the same travel window while `py-spy record` samples each API replica and worker,
then sorts every sample of each process into one category (ticket rendering, tracing, logging, metrics,
database, Redis, ...) by the innermost frame that belongs to one. Raw profiles (flamegraph input) and
the summary go to bench/results/profiles/. py-spy's own sampling costs a few percent of CPU.
"""

from __future__ import annotations

import argparse
import collections
import re
import subprocess
import sys
import time
from pathlib import Path

from jatra.rush.runner import stack_processes
from jatra.settings import get_settings

OUT = Path(__file__).parent / "results" / "profiles"
FRAME_PATH = re.compile(r"\(([^()]*?):\d+\)$")
#: a full file name from its package on (site-packages/litestar/app.py -> litestar/app.py), so that a key
#: such as "jatra/" is never matched by the directory the checkout or the virtualenv happens to be in
PACKAGE_PART = re.compile(r"^.*/(?:site-packages|dist-packages|lib/python3\.\d+|platform)/")
#: first match wins, scanning from the innermost frame outwards (ticket rendering wins anywhere)
CATEGORIES: list[tuple[str, tuple[str, ...]]] = [
    ("tracing (OTel)", ("opentelemetry/",)),
    ("logging (structlog, ECS)", ("structlog/", "ecs_logging/", "logging/__init__", "middleware/logging")),
    ("metrics (prometheus_client)", ("prometheus_client/", "plugins/prometheus")),
    ("database (SQLAlchemy, asyncpg, psycopg)", ("sqlalchemy/", "asyncpg/", "psycopg/", "psycopg_pool/")),
    ("Redis client", ("redis/",)),
    ("RabbitMQ client (aio-pika, aiormq, pamqp)", ("aio_pika/", "aiormq/", "pamqp/")),
    ("HTTP client (aiohttp, httpx)", ("aiohttp/", "httpx/", "httpcore/")),
    ("JWT, auth", ("jwt/", "litestar/security", "jatra/infra/auth")),
    ("serialisation (msgspec, json)", ("msgspec", "json/")),
    ("HTTP server (uvicorn)", ("uvicorn/protocols", "httptools")),
    ("Litestar", ("litestar/",)),
    ("Jatra's own code", ("jatra/",)),
    ("event loop, threads", ("asyncio/", "threading", "concurrent/")),
]
TICKET = ("jatra/tickets/pdf", "zxingcpp")
#: innermost frames where a thread waits rather than works: py-spy does not always drop them as idle
#: (py-spy's file names may be short, "selectors.py", or full, "/usr/lib/python3.11/selectors.py")
WAITING = re.compile(
    r"Selector\.select \((?:.*/)?selectors\.py:|_worker \((?:.*/)?concurrent/futures/thread\.py:"
)
IDLE = "waiting (idle event loop or pool thread)"


def category(frames: list[str]) -> str:
    if not frames or not frames[-1].strip() or WAITING.search(frames[-1]):
        return IDLE
    paths = [PACKAGE_PART.sub("", m.group(1)) if (m := FRAME_PATH.search(f)) else "" for f in frames]
    if any(key in p for p in paths for key in TICKET):
        return "ticket PDF (zxing-cpp)"
    for path in reversed(paths):
        for name, keys in CATEGORIES:
            if any(key in path for key in keys):
                return name
    return "other"


def summarise(raw: Path) -> tuple[int, collections.Counter[str]]:
    counts: collections.Counter[str] = collections.Counter()
    total = 0
    for line in raw.read_text().splitlines():
        stack, _, n = line.rpartition(" ")
        counts[category(stack.split(";"))] += int(n)
        total += int(n)
    return total, counts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rate", type=float, default=20)
    parser.add_argument("--seconds", type=int, default=20, help="sampling time, inside the rush")
    parser.add_argument("--first-day", type=int, default=1, help="the rush's travel window (jatra rush)")
    parser.add_argument(
        "--warm-up", type=int, default=30, help="seconds of a rush in the same window before, unsampled"
    )
    args = parser.parse_args()
    workers = ("outbox", "payments", "notifications", "reaper", "reconciler", "payment-provider")
    jatra = {
        name: pids[0]
        for name, pids in stack_processes(get_settings()).items()
        if pids and (name.startswith("api-") or name in workers)
    }
    if not jatra:
        sys.exit("no Jatra process is running: start the stack with `jatra up` first")
    OUT.mkdir(parents=True, exist_ok=True)
    bindir = Path(sys.executable).parent
    if args.warm_up:
        # Each process reads a journey's and a train's layout once, opens its pools and fills its caches on
        # first use: profiled in a fresh stack, that start-up cost was ~5 % of an API replica's samples.
        subprocess.run(
            [bindir / "jatra", "rush", "--rate", str(args.rate), "--duration", str(args.warm_up),
             "--passengers", "100", "--first-day", str(args.first_day)],
            stdout=subprocess.DEVNULL, check=True,
        )  # fmt: skip
    rush = subprocess.Popen(
        [bindir / "jatra", "rush", "--rate", str(args.rate), "--duration", str(args.seconds + 15),
         "--passengers", "400", "--first-day", str(args.first_day), "--out", str(OUT / "rush.json")],
        stdout=subprocess.DEVNULL,
    )  # fmt: skip
    time.sleep(12)  # past the logins, into the steady state
    spies = {
        name: subprocess.Popen(
            [
                bindir / "py-spy",
                "record",
                "-p",
                str(pid),
                "-d",
                str(args.seconds),
                "-r",
                "100",
                "-f",
                "raw",
                "--nonblocking",
                "--full-filenames",  # shortened, OpenTelemetry's namespace packages lose their name
                "-o",
                str(OUT / f"{name}.txt"),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for name, pid in jatra.items()
    }
    for spy in spies.values():
        spy.wait()
    rush.wait()
    text = report(list(spies), f"py-spy, {args.seconds} s at {args.rate} arrivals/s")
    (OUT / "summary.md").write_text(text)
    print(text)  # noqa: T201


def report(names: list[str], how: str) -> str:
    """The summary of the raw profiles in OUT (also to sort them again after a change of categories)."""
    lines = [f"# Where each Jatra process spends its CPU ({how})", ""]
    for name in names:
        total, counts = summarise(OUT / f"{name}.txt")
        busy = total - counts.pop(IDLE, 0)
        lines.append(f"## {name}: {busy} busy samples of {total} (shares below are of the busy ones)")
        lines += [f"- {n / busy:6.1%}  {cat}" for cat, n in counts.most_common() if busy]
        lines.append("")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
