"""Where the CPU went during a rush: cores used by each process of the local stack, read from /proc.

A process counts with its children (Postgres backends under the postmaster, RabbitMQ's beam), including
children that exited during the window. Linux only; elsewhere the report simply has no CPU table.
"""

from __future__ import annotations

import os
from collections import defaultdict
from pathlib import Path

PROC = Path("/proc")
TICK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def _stat(pid: int) -> list[str] | None:
    try:
        raw = (PROC / str(pid) / "stat").read_text()
    except OSError:
        return None
    return raw[raw.rindex(")") + 2 :].split()  # fields after "pid (comm)": state is [0], ppid [1]


def _children() -> dict[int, list[int]]:
    tree: dict[int, list[int]] = defaultdict(list)
    for entry in PROC.iterdir():
        if entry.name.isdigit() and (fields := _stat(int(entry.name))) is not None:
            tree[int(fields[1])].append(int(entry.name))
    return tree


def _ticks(root: int, tree: dict[int, list[int]], others: frozenset[int] = frozenset()) -> int:
    """utime + stime of the live process tree, plus what exited children left in the root's cutime/cstime.

    A child that is itself one of the ``others`` measured is left to its own row (supervisord's programs)."""
    total, todo = 0, [root]
    while todo:
        pid = todo.pop()
        fields = _stat(pid)
        if fields is None:
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime
        if pid == root:
            total += int(fields[13]) + int(fields[14])  # cutime, cstime: children that already exited
        todo += [child for child in tree.get(pid, []) if child not in others]
    return total


def cpu_seconds(pid: int) -> float:
    """CPU seconds a process and its children (live or exited) have used so far."""
    return _ticks(pid, _children()) / TICK


def machine_ticks() -> tuple[int, int]:
    """(busy, total) jiffies of the whole machine, from /proc/stat."""
    try:
        fields = [int(x) for x in (PROC / "stat").read_text().split("\n", 1)[0].split()[1:]]
    except (OSError, ValueError):
        return 0, 0
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    return sum(fields) - idle, sum(fields)


class CpuMeter:
    """Snapshot at start and at stop; cores used per named process over the window."""

    def __init__(self, processes: dict[str, list[int]]) -> None:
        self.processes = {name: pids[0] for name, pids in processes.items() if pids}
        self.start: dict[str, int] = {}
        self.machine: tuple[int, int] = (0, 0)

    def _snapshot(self) -> dict[str, int]:
        tree = _children()
        roots = frozenset(self.processes.values())
        return {name: _ticks(pid, tree, roots - {pid}) for name, pid in self.processes.items()}

    def begin(self) -> None:
        self.start = self._snapshot()
        self.machine = machine_ticks()

    def cores(self, seconds: float) -> dict[str, object]:
        """Cores per process (most first), and how busy the whole machine was (0..1)."""
        end, (busy, total) = self._snapshot(), machine_ticks()
        per = {name: (end.get(name, 0) - self.start.get(name, 0)) / TICK / seconds for name in self.processes}
        busy_share = (busy - self.machine[0]) / max(1, total - self.machine[1])
        return {
            "by_process": {
                k: round(v, 3) for k, v in sorted(per.items(), key=lambda kv: -kv[1]) if v >= 0.005
            },
            "machine_busy": round(busy_share, 2),
            "cpus": os.cpu_count(),
        }
