"""summary.json of an ab.sh set: ``summarise.py DIR RUN...`` (DIR holds rush-<run>.json and the
gc_scrape.py snapshots <run>-0.json, <run>-1.json)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from overhead import cpu_ms_per_booking

WATCHED = ("api-1", "api-2", "payments", "notifications")


def row(d: Path, run: str) -> dict[str, Any]:
    r = json.loads((d / f"rush-{run}.json").read_text())
    a0, a1 = (json.loads((d / f"{run}-{i}.json").read_text()) for i in (0, 1))
    cpu = cpu_ms_per_booking(r)
    by = cpu["by_process"]

    def delta(p: str, key: str) -> float:
        return float(a1[p].get(key, 0) - a0[p].get(key, 0))

    full = [(delta(p, "2:sum"), delta(p, "2:count")) for p in WATCHED]
    n = sum(k for _, k in full)
    return {
        "system": cpu["system"],
        "api": round(by.get("api-1", 0) + by.get("api-2", 0), 1),
        "busy": r["cpu_cores"]["machine_busy"],
        "cpm": r["confirmed_per_minute"],
        "invariants_ok": r["invariants_ok"],
        "http_5xx": sum(v for s in r["outcomes"].values() for k, v in s.items() if str(k).startswith("5")),
        "api_gc_s": round(sum(delta(p, f"{g}:sum") for p in ("api-1", "api-2") for g in "012"), 3),
        "full_collections": n,
        "full_mean_ms": round(1000 * sum(s for s, _ in full) / max(1, n), 1),
        "full_max_mean_ms": round(max((1000 * s / k for s, k in full if k), default=0), 1),
        "latency": {k: v for k, v in r["latency"].items() if k != "book_retry"},
    }


if __name__ == "__main__":
    d = Path(sys.argv[1])
    rows = {run: row(d, run) for run in sys.argv[2:]}
    (d / "summary.json").write_text(json.dumps(rows, indent=1))
