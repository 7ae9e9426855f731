"""CPython's garbage collector: each collection's pause measured, and what a process holds from its start
kept out of the full collections.

A collection stops the whole process while it runs: the event loop answers nothing meanwhile, so one full
collection is a stall every request then in flight waits out. Its length grows with the objects the
process tracks: an API replica some 217,000 once its modules, app and train layouts are loaded, and in
rushes at 50 arrivals/s each process's full collections (two or three a minute and a half) stopped it for
120-218 ms (bench/results/gc-freeze/). ``jatra_gc_pause_seconds`` counts every collection by generation
with its duration, on every Jatra process (:func:`watch`).

:func:`freeze` is called once a process has warmed up (the API's lifespan, each worker before its loop):
one full collection, then :func:`gc.freeze` moves every object still alive into the permanent generation,
which no later collection scans. Those objects (modules, classes, functions, the app, the layouts) live as
long as the process anyway; a cycle among them that became garbage before the freeze is collected by the
collection that precedes it, and one that becomes garbage after it is never freed (a process's start
does not make such cycles repeatedly, so this is bounded by what the start made). Logged as ``gc.frozen``
with the number of objects. In the same rushes a full collection then took 3-47 ms; the rushes'
percentiles and CPU a booking did not change beyond their spread (CPU queueing sets them on this machine).
"""

from __future__ import annotations

import gc
import time
from typing import Any

import structlog

from jatra.telemetry import catalogue as c
from jatra.telemetry.metrics import histogram

log = structlog.get_logger()
PAUSES = histogram(c.GC_PAUSES)
#: the label of each generation, made once (a collection's callback must not build strings)
_GENERATION = tuple(PAUSES.labels(str(g)) for g in range(3))
_started = 0.0


def _on_collection(phase: str, info: dict[str, Any]) -> None:
    # runs inside the collection, holding the GIL: no other collection starts until this one stops
    global _started  # noqa: PLW0603 - one collection at a time, in any thread
    if phase == "start":
        _started = time.perf_counter()
    else:
        _GENERATION[info["generation"]].observe(time.perf_counter() - _started)


def watch() -> None:
    """Measure every collection of this process from now on (once, however often it is called)."""
    if _on_collection not in gc.callbacks:
        gc.callbacks.append(_on_collection)


def freeze() -> int:
    """Collect once, then keep everything still alive out of later collections; how many objects that
    was. Once a process: a test process starts many apps, and each full collection of its heap costs."""
    if frozen := gc.get_freeze_count():
        return frozen
    started = time.perf_counter()
    gc.collect()
    gc.freeze()
    frozen = gc.get_freeze_count()
    log.info("gc.frozen", objects=frozen, duration_ms=round((time.perf_counter() - started) * 1000, 1))
    return frozen
