"""jatra_gc_pause_seconds of each process of the local stack (dev ports, base 17000), for ab.sh.

``gc_scrape.py OUT.json`` writes a snapshot; ``gc_scrape.py diff BEFORE.json AFTER.json`` prints each
process's collections, their time and their mean between the two, by generation.
"""

from __future__ import annotations

import json
import re
import sys
import urllib.request
from pathlib import Path

PORTS = {"api-1": 17061, "api-2": 17062, "payments": 17004, "notifications": 17006, "outbox": 17003}
PORTS |= {"reaper": 17002}
SAMPLE = re.compile(r"jatra_gc_pause_seconds_(count|sum|bucket)\{(.*)\} (\S+)")


def snapshot() -> dict[str, dict[str, float]]:
    found: dict[str, dict[str, float]] = {}
    for name, port in PORTS.items():
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as answer:
            text = answer.read().decode()
        values: dict[str, float] = {}
        for line in text.splitlines():
            if m := SAMPLE.match(line):
                labels = dict(re.findall(r'(\w+)="([^"]*)"', m.group(2)))
                le = f":{labels['le']}" if m.group(1) == "bucket" else ""
                values[f"{labels['generation']}:{m.group(1)}{le}"] = float(m.group(3))
        found[name] = values
    return found


def diff(before: dict[str, dict[str, float]], after: dict[str, dict[str, float]]) -> None:
    for name in PORTS:
        row = []
        for g in "012":
            n = after[name].get(f"{g}:count", 0) - before[name].get(f"{g}:count", 0)
            s = after[name].get(f"{g}:sum", 0) - before[name].get(f"{g}:sum", 0)
            row.append(f"gen{g} n={n:.0f} sum={s * 1000:.0f}ms mean={s / n * 1000 if n else 0:.2f}ms")
        print(f"{name:14s} " + " | ".join(row))  # noqa: T201


if __name__ == "__main__":
    if sys.argv[1] == "diff":
        diff(json.loads(Path(sys.argv[2]).read_text()), json.loads(Path(sys.argv[3]).read_text()))
    else:
        Path(sys.argv[1]).write_text(json.dumps(snapshot()))
