"""Every process of the local stack's cores in 10 s windows, the top seven: ``cpu_windows.py N`` (windows)."""

from __future__ import annotations

import sys
import time

from jatra.rush.cpu import CpuMeter
from jatra.rush.runner import stack_processes
from jatra.settings import Settings

if __name__ == "__main__":
    processes = stack_processes(Settings())
    for i in range(int(sys.argv[1]) if len(sys.argv) > 1 else 18):
        meter = CpuMeter(processes)
        meter.begin()
        time.sleep(10)
        cores = meter.cores(10)
        by: dict[str, float] = cores["by_process"]  # type: ignore[assignment]
        top = ", ".join(f"{k} {v}" for k, v in list(by.items())[:7])
        print(f"{(i + 1) * 10:4d}s busy {cores['machine_busy']}: {top}", flush=True)  # noqa: T201
