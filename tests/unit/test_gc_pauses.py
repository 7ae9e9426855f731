"""The garbage collector's pauses, counted by generation, and a process's start kept out of its full
collections: CPython's own collector, run for real."""

from __future__ import annotations

import dataclasses
import gc
import time
import weakref
from collections.abc import Iterator

import pytest
from prometheus_client import REGISTRY

from jatra import worker
from jatra.app import create_app
from jatra.settings import Settings, load_settings
from jatra.telemetry import gc_pauses


def counted(generation: int) -> tuple[float, float]:
    labels = {"generation": str(generation)}
    count = REGISTRY.get_sample_value("jatra_gc_pause_seconds_count", labels) or 0.0
    return count, REGISTRY.get_sample_value("jatra_gc_pause_seconds_sum", labels) or 0.0


@pytest.fixture
def unfrozen(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """No object in the permanent generation before or after, and the process not yet frozen."""
    monkeypatch.setattr(gc_pauses, "_frozen", False)
    gc.unfreeze()
    yield
    gc.unfreeze()


@pytest.fixture
def no_automatic_collection() -> Iterator[None]:
    was = gc.isenabled()
    gc.disable()
    yield
    if was:
        gc.enable()


class Node:
    def __init__(self) -> None:
        self.other: Node | None = None


def test_every_collection_is_counted_by_generation_with_its_pause(no_automatic_collection: None) -> None:
    gc_pauses.watch()
    gc_pauses.watch()
    assert gc.callbacks.count(gc_pauses._on_collection) == 1
    young, full = counted(0), counted(2)
    gc.collect(0)
    started = time.perf_counter()
    gc.collect(2)
    took = time.perf_counter() - started
    assert counted(0)[0] == young[0] + 1
    count, total = counted(2)
    assert count == full[0] + 1
    assert 0 < total - full[1] <= took  # the collection's own time, measured from its start to its stop


def test_freeze_keeps_what_lives_out_of_later_collections(unfrozen: None) -> None:
    gc_pauses.watch()
    held = [[i] for i in range(10_000)]
    assert gc.is_tracked(held[0])
    assert any(o is held for o in gc.get_objects())
    full_collections = counted(2)[0]

    frozen = gc_pauses.freeze()

    assert frozen > len(held)
    assert not any(o is held or o is held[0] for o in gc.get_objects())  # never scanned again
    assert counted(2)[0] == full_collections + 1  # the one collection before the freeze
    assert gc_pauses.freeze() > 0  # once a process: no second collection
    assert counted(2)[0] == full_collections + 1


def test_garbage_made_before_the_freeze_is_collected_first(
    unfrozen: None, no_automatic_collection: None
) -> None:
    a, b = Node(), Node()
    a.other, b.other = b, a
    gone = weakref.ref(a)
    del a, b  # a cycle: only the collector frees it
    assert gone() is not None
    gc_pauses.freeze()
    assert gone() is None


@pytest.fixture
def thresholds() -> Iterator[tuple[int, int, int]]:
    """The collector's thresholds as they were, restored afterwards."""
    was = gc.get_threshold()
    yield was
    gc.set_threshold(*was)


def test_tune_sets_the_youngest_generation_s_threshold_only(thresholds: tuple[int, int, int]) -> None:
    gc.set_threshold(700, 11, 12)
    gc_pauses.tune(4321)
    assert gc.get_threshold() == (4321, 11, 12)


def test_the_default_collects_the_youngest_generation_less_often_than_cpython() -> None:
    assert Settings().gc_young_threshold == 10_000  # CPython's default is 700
    with pytest.raises(ValueError, match=r"JATRA_GC_YOUNG_THRESHOLD must be 100\.\.100000"):
        load_settings({"JATRA_GC_YOUNG_THRESHOLD": "0"})


def test_an_api_process_takes_its_threshold_from_the_settings(thresholds: tuple[int, int, int]) -> None:
    create_app(["catalog"], dataclasses.replace(Settings(), gc_young_threshold=2345))
    assert gc.get_threshold() == (2345, *thresholds[1:])


def test_a_worker_takes_its_threshold_from_the_settings(
    thresholds: tuple[int, int, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(worker, "configure_logging", lambda *_: None)  # the test run's logging stays
    monkeypatch.setattr(worker, "setup_tracing", lambda *_: None)
    worker.set_up(dataclasses.replace(Settings(), gc_young_threshold=3456, worker_nice=0), "reaper")
    assert gc.get_threshold() == (3456, *thresholds[1:])
