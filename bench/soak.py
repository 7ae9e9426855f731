"""`make soak`: the standard rush at half capacity for a long time, watching every process's memory.

Runs `jatra rush` (its own process) against the running local stack and samples the resident memory of
each process of the stack every SOAK_SAMPLE_S seconds. Writes bench/results/soak.json: RSS per process
at the start and the end (and the samples between), the growth, the restarts supervisord made, and the
rush's own report (throughput, latency, invariants). Exits non-zero if an invariant was broken.

Environment: SOAK_RATE (arrivals/s, default 10: half of what this 2-core machine sustains), SOAK_DURATION
(seconds, default 1800), SOAK_PASSENGERS (default 400), SOAK_FIRST_DAY (travel window, default 20).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

from jatra.settings import get_settings
from jatra.stack.commands import stack_for
from jatra.stack.supervisor import restarts

OUT = Path(__file__).parent / "results"


def rss_mb(pid: int) -> float | None:
    """Resident memory of one process in MiB (its own, not its children's), or None if it is gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        return None
    return None


def snapshot() -> dict[str, float]:
    """RSS per process of the stack, by the PID the stack knows now (supervised ones are followed)."""
    found = {}
    for running in stack_for(get_settings()).status():
        if running.pids and (mb := rss_mb(running.pids[0])) is not None:
            found[running.name] = mb
    return found


def main() -> int:
    rate = float(os.environ.get("SOAK_RATE", "10"))
    duration = float(os.environ.get("SOAK_DURATION", "1800"))
    interval = float(os.environ.get("SOAK_SAMPLE_S", "30"))
    settings = get_settings()
    report = OUT / "soak-rush.json"
    samples: list[tuple[float, dict[str, float]]] = []
    done = threading.Event()

    def sample() -> None:
        t0 = time.monotonic()
        while not done.wait(0 if not samples else interval):
            samples.append((round(time.monotonic() - t0), snapshot()))

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    rush = subprocess.run(
        [sys.executable, "-m", "jatra", "rush", "--rate", str(rate), "--duration", str(duration),
         "--passengers", os.environ.get("SOAK_PASSENGERS", "400"),
         "--first-day", os.environ.get("SOAK_FIRST_DAY", "20"), "--out", str(report)],
        check=False,
    )  # fmt: skip
    done.set()
    sampler.join()
    samples.append((samples[-1][0] + interval if samples else 0, snapshot()))
    first, last = samples[0][1], samples[-1][1]
    growth = {
        name: {"start_mb": first[name], "end_mb": last[name], "growth_mb": round(last[name] - first[name], 1)}
        for name in sorted(first)
        if name in last
    }
    result = json.loads(report.read_text()) if report.exists() else {}
    OUT.joinpath("soak.json").write_text(
        json.dumps(
            {
                "rate_per_s": rate,
                "duration_s": duration,
                "rss": growth,
                "restarts": restarts(stack_for(settings).ctx),
                "samples": [{"t_s": t, "rss_mb": s} for t, s in samples],
                "confirmed_per_minute": result.get("confirmed_per_minute"),
                "latency": result.get("latency"),
                "invariants": result.get("invariants"),
                "invariants_ok": result.get("invariants_ok"),
            },
            indent=2,
        )
    )
    width = max(map(len, growth), default=10)
    lines = [f"{'process':{width}}  start MiB  end MiB  growth"]
    lines += [
        f"{n:{width}}  {g['start_mb']:9}  {g['end_mb']:7}  {g['growth_mb']:+}" for n, g in growth.items()
    ]
    lines.append(f"invariants: {result.get('invariants')}; results in {OUT / 'soak.json'}")
    print("\n".join(lines))  # noqa: T201
    return rush.returncode


if __name__ == "__main__":
    sys.exit(main())
