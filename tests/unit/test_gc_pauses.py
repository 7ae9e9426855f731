"""The garbage collector's pauses, counted by generation, and a process's start kept out of its full
collections: CPython's own collector, run for real."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator

import pytest
from prometheus_client import REGISTRY

from jatra.telemetry import gc_pauses


def counted(generation: int) -> tuple[float, float]:
    labels = {"generation": str(generation)}
    count = REGISTRY.get_sample_value("jatra_gc_pause_seconds_count", labels) or 0.0
    return count, REGISTRY.get_sample_value("jatra_gc_pause_seconds_sum", labels) or 0.0


@pytest.fixture
def unfrozen() -> Iterator[None]:
    """No object in the permanent generation before or after (an app started earlier in this test
    process may have frozen it)."""
    gc.unfreeze()
    yield
    gc.unfreeze()


class Node:
    def __init__(self) -> None:
        self.other: Node | None = None


def test_every_collection_is_counted_by_generation_with_its_pause() -> None:
    gc_pauses.watch()
    gc_pauses.watch()
    assert gc.callbacks.count(gc_pauses._on_collection) == 1
    before = {g: counted(g) for g in range(3)}
    gc.collect(0)
    gc.collect(2)
    after = {g: counted(g) for g in range(3)}
    assert after[0][0] >= before[0][0] + 1
    assert after[2][0] >= before[2][0] + 1
    assert after[2][1] > before[2][1]  # a full collection takes some time


def test_freeze_keeps_what_lives_out_of_later_collections(unfrozen: None) -> None:
    gc_pauses.watch()
    held = [{"n": i} for i in range(10_000)]
    tracked = len(gc.get_objects())
    assert any(o is held for o in gc.get_objects())

    frozen = gc_pauses.freeze()

    assert frozen == gc.get_freeze_count() >= len(held)
    assert not any(o is held for o in gc.get_objects())  # no generation holds it: never scanned again
    assert len(gc.get_objects()) < tracked - len(held)
    full_collections = counted(2)[0]
    assert gc_pauses.freeze() == frozen  # once a process: no second collection, nothing more frozen
    assert counted(2)[0] == full_collections


def test_garbage_made_before_the_freeze_is_collected_first(unfrozen: None) -> None:
    gc.disable()  # no automatic collection between the cycle's making and the freeze
    try:
        a, b = Node(), Node()
        a.other, b.other = b, a
        gone = weakref.ref(a)
        del a, b  # a cycle: only the collector frees it
        assert gone() is not None
        gc_pauses.freeze()
        assert gone() is None
    finally:
        gc.enable()
