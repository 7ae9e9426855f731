"""Events the log shipper settles per second: real Jatra log lines, drained into Elasticsearch.

    JATRA_STATE_DIR=... JATRA_PORT_BASE=... python bench/logship.py --events 20000 --runs 5 [--from var/log]

Each run copies ``--events`` lines from the real ECS logs in ``--from`` (the first lines of each process's
log, in proportion) into a log directory of its own, then times one shipper draining them into the
stack's Elasticsearch (a fresh namespace each run, so nothing is a duplicate) and the shipper's own CPU.
The data streams it made are deleted afterwards. Prints each run and the medians as JSON.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

from jatra.infra.elastic import es_client
from jatra.infra.logfiles import Follower
from jatra.logship.setup import install
from jatra.logship.shipper import Shipper
from jatra.settings import Settings, get_settings


def copy_lines(source_dir: Path, target_dir: Path, events: int) -> int:
    """The first lines of every process's ECS log, ``events`` in all, shared as evenly as they allow."""
    sources = Follower(source_dir, target_dir / "unused-cursor.json").sources()
    assert sources, f"no ECS logs in {source_dir}"
    available = {}
    for name in sources:
        with (source_dir / f"{name}.log").open("rb") as f:
            available[name] = [
                line for _, line in zip(range(events), f, strict=False) if line.endswith(b"\n")
            ]
    taken = dict.fromkeys(sources, 0)
    while sum(taken.values()) < events and any(taken[n] < len(available[n]) for n in sources):
        for name in sources:
            if taken[name] < len(available[name]) and sum(taken.values()) < events:
                taken[name] += 1
    target_dir.mkdir(parents=True)
    for name in sources:
        (target_dir / f"{name}.log").write_bytes(b"".join(available[name][: taken[name]]))
    return sum(taken.values())


async def one_run(settings: Settings, source_dir: Path) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        namespace = "bench" + uuid.uuid4().hex[:8]
        mine = dataclasses.replace(
            settings, state_dir=Path(tmp), log_dir=Path(tmp) / "log", environment=namespace
        )
        lines = copy_lines(source_dir, mine.logs, ARGS.events)
        shipper = Shipper(mine)
        async with es_client(mine) as client:
            await install(client, mine)
            t0, cpu0 = time.perf_counter(), time.process_time()
            events = await shipper.drain(client, 3600)
            took, cpu = time.perf_counter() - t0, time.process_time() - cpu0
            await client.indices.delete(index=f"logs-jatra.*-{namespace}")
    assert events == lines, (events, lines)
    return {
        "events": events,
        "seconds": round(took, 2),
        "events_per_second": round(events / took),
        "shipper_cpu_us_per_event": round(cpu / events * 1e6, 1),
    }


async def main() -> None:
    settings = get_settings()
    runs = [await one_run(settings, Path(ARGS.source)) for _ in range(ARGS.runs)]
    for run in runs:
        sys.stdout.write(json.dumps(run) + "\n")
    summary = {
        "runs": len(runs),
        "batch": settings.logship_batch,
        "median_events_per_second": statistics.median(r["events_per_second"] for r in runs),
        "median_shipper_cpu_us_per_event": statistics.median(r["shipper_cpu_us_per_event"] for r in runs),
        "elasticsearch": settings.elasticsearch,
    }
    sys.stdout.write(json.dumps(summary) + "\n")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--from", dest="source", default="var/log", help="a log directory of real ECS logs")
    ARGS = parser.parse_args()
    asyncio.run(main())
