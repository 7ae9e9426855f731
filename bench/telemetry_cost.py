"""`make bench-telemetry`: what telemetry costs one API process, per request, mode by mode.

One API process (uvicorn + httptools + uvloop, every service in it, the local stack's servers behind it)
serves the passenger's read mix (journey search, then seat maps) from 32 connections, as in
`make bench-servers`, once per mode: telemetry off, on at the production sampling (0.1) and on at 1.0.
Spans are written as OTLP JSON to a scratch directory (as the local stack does) and the log goes to a
pipe that is read and thrown away, so the writes are paid for as they are in the stack. Modes alternate
over rounds (A B C A B C ...) because this machine is shared; medians and ratios to "off" are reported.

`BENCH_BASELINE_TREE=/path/to/another/checkout` adds the same modes served by that tree's code (for
example a `git worktree` of the commit before a change), interleaved with this tree's: a before/after of
one change measured on the same machine in the same minutes. Writes bench/results/telemetry-cost.json
(or `BENCH_TELEMETRY_OUT`).
"""

from __future__ import annotations

import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
from pathlib import Path
from typing import IO, Any

from bench.servers import NO_ADMISSION, drive

ROOT = Path(__file__).resolve().parent.parent
ROUNDS = int(os.environ.get("BENCH_SERVER_ROUNDS", "3"))
MODES: dict[str, dict[str, str]] = {
    "off": {"JATRA_TELEMETRY_ENABLED": "false"},
    "on-0.1": {"JATRA_TELEMETRY_ENABLED": "true", "JATRA_TRACE_SAMPLE_RATIO": "0.1"},
    "on-1.0": {"JATRA_TELEMETRY_ENABLED": "true", "JATRA_TRACE_SAMPLE_RATIO": "1.0"},
}


def _drain(stream: IO[bytes], counted: list[int]) -> None:
    for chunk in iter(lambda: stream.read(65536), b""):
        counted[0] += len(chunk)


def one(tree: Path, mode: str, traces: Path) -> dict[str, Any]:
    env = {
        **os.environ,
        **NO_ADMISSION,
        **MODES[mode],
        "JATRA_TRACE_DIR": str(traces),
        "PYTHONPATH": f"{tree}:{tree / 'platform'}",
    }
    cmd = [sys.executable, "-m", "bench.servers", "uvicorn", "uvloop"]
    proc = subprocess.Popen(cmd, cwd=tree, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    logged = [0]
    assert proc.stdout is not None
    reader = threading.Thread(target=_drain, args=(proc.stdout, logged), daemon=True)
    reader.start()
    try:
        result = asyncio.run(drive(proc.pid))
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        reader.join(timeout=10)
    requests = result["search_and_seat_map"]["requests"] + result["health"]["requests"]
    result["log_bytes_per_request"] = round(logged[0] / requests, 1)
    return result


def main() -> None:
    trees = {"": ROOT}
    if baseline := os.environ.get("BENCH_BASELINE_TREE"):
        trees = {"baseline ": Path(baseline).resolve(), "": ROOT}
    only = [m for m in os.environ.get("BENCH_TELEMETRY_MODES", "").split(",") if m] or list(MODES)
    names = {f"{label}{mode}": (label, tree, mode) for mode in only for label, tree in trees.items()}
    runs: dict[str, list[dict[str, Any]]] = {name: [] for name in names}
    with tempfile.TemporaryDirectory(prefix="jatra-bench-traces-") as traces:
        for round_ in range(ROUNDS):
            for name, (_, tree, mode) in names.items():
                runs[name].append(result := one(tree, mode, Path(traces)))
                cpu = result["search_and_seat_map"]["server_cpu_ms_per_request"]
                print(f"round {round_ + 1} {name}: {cpu} ms per request", flush=True)  # noqa: T201
    summary: dict[str, Any] = {}
    for name, rs in runs.items():
        summary[name] = {
            "read_mix_cpu_ms_per_request": statistics.median(
                r["search_and_seat_map"]["server_cpu_ms_per_request"] for r in rs
            ),
            "read_mix_p99_ms": statistics.median(r["search_and_seat_map"]["p99_ms"] for r in rs),
            "health_cpu_ms_per_request": statistics.median(
                r["health"]["server_cpu_ms_per_request"] for r in rs
            ),
            "log_bytes_per_request": statistics.median(r["log_bytes_per_request"] for r in rs),
        }
    for name, s in summary.items():
        off = summary.get(f"{names[name][0]}off")  # the same tree's code with telemetry off
        if off:
            s["read_mix_ratio_to_off"] = round(
                s["read_mix_cpu_ms_per_request"] / off["read_mix_cpu_ms_per_request"], 3
            )
    out = ROOT / os.environ.get("BENCH_TELEMETRY_OUT", "bench/results/telemetry-cost.json")
    out.write_text(json.dumps({"rounds": ROUNDS, "summary": summary, "runs": runs}, indent=2))
    print(json.dumps(summary, indent=2))  # noqa: T201


if __name__ == "__main__":
    main()
