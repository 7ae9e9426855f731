"""The rush's CPU table counts a process with its children, the live ones and those that already exited."""

from __future__ import annotations

import os
import subprocess
import sys

from jatra.rush.cpu import CpuMeter, cpu_seconds

WORK = "sum(i * i for i in range(6_000_000))"  # ~0.3-1 s of CPU, whatever the load


def _cpu_seconds(meter: CpuMeter, name: str) -> float:
    by_process = meter.cores(1.0)["by_process"]
    assert isinstance(by_process, dict)
    return float(by_process.get(name, 0.0))


def test_a_process_tree_counts_live_and_exited_children() -> None:
    # root: starts one child that works and exits, then one that works and stays; reports each step
    script = (
        "import subprocess, sys\n"
        f"subprocess.run([sys.executable, '-c', {WORK!r}])\n"
        "print('exited', flush=True)\n"
        f"live = subprocess.Popen([sys.executable, '-c', {WORK!r} + '; print(\"worked\", flush=True); "
        "import time; time.sleep(30)'], stdout=sys.stdout)\n"
        "live.wait()\n"
    )
    root = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    idle = subprocess.Popen(
        [sys.executable, "-c", "import time; print('ready', flush=True); time.sleep(30)"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert idle.stdout is not None
        assert idle.stdout.readline().strip() == "ready"  # its start-up is done before the meter begins
        meter = CpuMeter({"root": [root.pid], "idle": [idle.pid]})
        meter.begin()
        assert root.stdout is not None
        assert root.stdout.readline().strip() == "exited"
        assert root.stdout.readline().strip() == "worked"
        assert _cpu_seconds(meter, "root") >= 0.2  # two children's work, at ~0.1+ s each
        assert _cpu_seconds(meter, "idle") < 0.05
    finally:
        for proc in (root, idle):
            subprocess.run(["pkill", "-P", str(proc.pid)], check=False)
            proc.kill()
            proc.wait()


def test_a_vanished_process_reads_as_zero() -> None:
    meter = CpuMeter({"gone": [2**22 + 12345]})
    meter.begin()
    assert meter.cores(1.0)["by_process"] == {}


def test_cpu_seconds_counts_a_child_that_already_exited() -> None:
    before = cpu_seconds(os.getpid())
    subprocess.run([sys.executable, "-c", WORK], check=True)  # this process only waits meanwhile
    assert cpu_seconds(os.getpid()) - before >= 0.2
