"""The per-process map of data that never changes under it: the least recently used entry goes first."""

from __future__ import annotations

from jatra.infra.lru import Lru


def test_the_least_recently_used_entry_goes_first() -> None:
    kept: Lru[str, int] = Lru(2)
    assert kept.put("a", 1) == 1 and kept.put("b", 2) == 2
    assert kept.get("a") == 1  # "b" is now the least recently used
    kept.put("c", 3)
    assert (kept.get("a"), kept.get("b"), kept.get("c"), len(kept)) == (1, None, 3, 2)
    kept.pop("a")
    kept.pop("a")  # gone already: nothing to do
    assert kept.get("a") is None and len(kept) == 1
    kept.clear()
    assert len(kept) == 0
