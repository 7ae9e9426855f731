"""CPython's garbage collector: each collection's pause measured, its youngest generation collected less
often, and, when asked, what a process holds from its start kept out of the full collections.

A collection stops the whole process while it runs: the event loop answers nothing meanwhile, so one full
collection is a stall every request then in flight waits out. Its length grows with the objects the
process tracks (an API replica some 217,000 once warmed up). In 90 s rushes at 50 arrivals/s each process
made one to three full collections, and each process's mean one stopped it for 120-218 ms (one of 386;
bench/results/gc-freeze/). ``jatra_gc_pause_seconds`` counts every collection by generation with its
duration, on every API process and worker (:func:`watch`).

:func:`tune` sets the youngest generation's threshold: ``JATRA_GC_YOUNG_THRESHOLD``, 10,000 where
CPython's default is 700 (bench/results/gc-threshold/). CPython counts container objects allocated minus
those deallocated, and collects the youngest generation when the count passes the threshold; what pushes
the count up is what outlives reference counting (cycles, objects kept). At 700 an API replica collected
it about every 30 requests, and each collection carried what the requests then in flight held into the
middle generation, whose collections then had it to scan. The older generations keep CPython's
thresholds (each collected after more than ten collections of the one younger), so a full collection
still comes, later: delayed, not removed. A larger threshold makes each young collection longer (4-16 ms
against ~1 in rushes at 10,000), hence the setting's upper bound.

:func:`freeze`, with ``JATRA_GC_FREEZE=true``, runs once a process has warmed up (the API's lifespan,
each worker before its loop): one full collection (counted like any other: 0.3-0.7 s in a worker at
start), then :func:`gc.freeze` moves every object still alive into the permanent generation, which no
later collection scans. Those objects live as long as the process anyway; a cycle among them that became
garbage before the freeze is collected by the collection that precedes it, one that becomes garbage
after it is never freed. In the same rushes each process's mean full collection fell to 3-47 ms, but
neither the booking's p99 nor the CPU a booking improved: the frozen runs' p99 was higher in most
pairings and their CPU a booking 1.1 ms higher (medians), inside the runs' spread. So it is off by
default, there for a process whose full collections are seen to hurt.
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
#: each generation's series, looked up once rather than in every collection
_GENERATION = tuple(PAUSES.labels(str(g)) for g in range(3))
_started = 0.0
_frozen = False


def _on_collection(phase: str, info: dict[str, Any]) -> None:
    # CPython runs no second collection until this one stops (its own "collecting" flag), in any thread
    global _started  # noqa: PLW0603
    if phase == "start":
        _started = time.perf_counter()
    elif _started:  # a stop whose start came before watch() was called is not measured
        _GENERATION[info["generation"]].observe(time.perf_counter() - _started)
        _started = 0.0


def watch() -> None:
    """Measure every collection of this process from now on (once, however often it is called)."""
    if _on_collection not in gc.callbacks:
        gc.callbacks.append(_on_collection)


def tune(young: int) -> None:
    """Collect the youngest generation after ``young`` container objects allocated, net of those freed
    (as the module says); the older generations' thresholds stay as they are."""
    _, older, oldest = gc.get_threshold()
    gc.set_threshold(young, older, oldest)


def freeze() -> int:
    """Collect once, then keep everything still alive out of later collections; how many objects are
    frozen. Once a process: a test process starts many apps, and each full collection of its heap costs."""
    global _frozen  # noqa: PLW0603
    if not _frozen:
        _frozen = True
        started = time.perf_counter()
        gc.collect()
        gc.freeze()
        log.info(
            "gc.frozen",
            objects=gc.get_freeze_count(),
            duration_ms=round((time.perf_counter() - started) * 1000, 1),
        )
    return gc.get_freeze_count()
