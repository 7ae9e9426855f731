"""Summarise `make bench`: medians of the telemetry-on and -off rush runs, and their ratios."""

from __future__ import annotations

import json
import statistics
import sys
from pathlib import Path
from typing import Any


def cpu_ms_per_booking(run: dict[str, Any]) -> float:
    """Machine CPU (every process: servers, Jatra, generator) per confirmed booking during the arrivals:
    what telemetry costs in work, which queueing on a busy machine does not distort as it does latency."""
    cpu, confirmed = run["cpu_cores"], run["bookings_final"].get("CONFIRMED", 0)
    busy_cores = float(cpu["machine_busy"]) * int(cpu["cpus"])
    return round(busy_cores * float(run["load_seconds"]) * 1000 / confirmed, 1) if confirmed else 0.0


def main() -> None:
    out = Path(sys.argv[1])
    runs: dict[str, list[dict[str, Any]]] = {"on": [], "off": []}
    for path in sorted(out.glob("rush-telemetry-*.json")):
        mode = path.stem.split("-")[2]
        runs[mode].append(json.loads(path.read_text()))

    def median(mode: str, pick: str) -> float:
        values = []
        for run in runs[mode]:
            if pick == "confirmed_per_minute":
                values.append(float(run["confirmed_per_minute"]))  # type: ignore[arg-type]
            elif pick == "cpu_ms_per_booking":
                values.append(cpu_ms_per_booking(run))
            else:
                step, stat = pick.split(":")
                values.append(float(run["latency"][step][stat]))  # type: ignore[index]
        return statistics.median(values)

    metrics = [
        "confirmed_per_minute",
        "cpu_ms_per_booking",
        "book:p50_ms",
        "book:p99_ms",
        "hold:p99_ms",
        "search:p99_ms",
    ]
    summary = {
        "runs": {mode: len(r) for mode, r in runs.items()},
        "scenario": runs["on"][0]["options"] if runs["on"] else {},
        "median_on": {m: median("on", m) for m in metrics},
        "median_off": {m: median("off", m) for m in metrics},
        "invariants_ok": all(r["invariants_ok"] for mode in runs.values() for r in mode),
    }
    summary["ratio_on_over_off"] = {
        m: round(summary["median_on"][m] / summary["median_off"][m], 3) if summary["median_off"][m] else None
        for m in metrics
    }
    (out / "observability-overhead.json").write_text(json.dumps(summary, indent=2))
    print(json.dumps(summary, indent=2))  # noqa: T201


if __name__ == "__main__":
    main()
