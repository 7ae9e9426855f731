"""A batch of log events as bulk requests: its NDJSON lines as written, split by size, in order."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from jatra.logship import bulk
from jatra.logship.documents import Action
from tests.fixtures.logs import Logged


def actions(n: int, size: int) -> list[Action]:
    return [Action("logs-jatra.api-dev", f"{i:040x}", b'{"m":"' + b"x" * size + b'"}') for i in range(n)]


def test_a_batch_is_one_request_of_header_and_document_lines_in_order() -> None:
    batch = actions(3, 10)
    [lines] = bulk._requests(batch)
    assert lines == [piece for a in batch for piece in (a.header(), a.document)]
    assert bulk._requests([]) == []


def test_a_batch_over_the_request_size_is_split_and_keeps_its_order(monkeypatch: pytest.MonkeyPatch) -> None:
    batch = actions(10, 200)
    one = len(batch[0].header()) + len(batch[0].document) + 2
    monkeypatch.setattr(bulk, "MAX_REQUEST_BYTES", 3 * one)  # three events a request
    requests = bulk._requests(batch)
    assert [len(r) // 2 for r in requests] == [3, 3, 3, 1]
    assert [line for r in requests for line in r] == [p for a in batch for p in (a.header(), a.document)]
    monkeypatch.setattr(bulk, "MAX_REQUEST_BYTES", 10)  # an event bigger than a request goes alone
    assert [len(r) // 2 for r in bulk._requests(batch[:2])] == [1, 1]


def test_a_held_back_event_is_named_by_its_error_type_never_its_reason() -> None:
    """What the warning of a held-back batch says: Elasticsearch's error type, from a bulk item's error or
    from a whole answer's body; the reason (which may quote the document) never."""
    item = {"type": "es_rejected_execution_exception", "reason": 'rejected {"phone": "+8801..."}'}
    whole = {"error": {"root_cause": [], "type": "cluster_block_exception", "reason": "flood"}, "status": 429}
    assert bulk._error_type(item, 429) == "es_rejected_execution_exception"
    assert bulk._error_type(whole, 429) == "cluster_block_exception"
    assert bulk._error_type(None, 503) == "status 503"
    assert bulk._error_type("Service Unavailable", 503) == "status 503"  # a proxy's body, not JSON
    assert bulk._error_type({"error": "text"}, 500) == "status 500"


class FloodedFor:
    """An Elasticsearch past its flood stage for its first ``refusals`` bulk requests (every item 429),
    then taking everything; each request at the fake clock's time."""

    def __init__(self, refusals: int) -> None:
        self.refusals = refusals
        self.calls = 0

    async def bulk(self, operations: list[bytes]) -> dict[str, Any]:
        self.calls += 1
        if self.calls <= self.refusals:
            refused = {"status": 429, "error": {"type": "cluster_block_exception", "reason": "flood"}}
            return {"items": [{"create": refused} for _ in range(len(operations) // 2)]}
        return {"items": [{"create": {"status": 201}} for _ in range(len(operations) // 2)]}


async def test_a_held_back_batch_is_counted_as_it_waits_and_warned_about_once_a_minute(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Back-offs of 0.2 s doubling to 10 s, on a fake clock: refusals at 0, 0.2, 0.6, 1.4, 3.0, 6.2, 12.6,
    22.6 ... 72.6 s; the first warning at the first refusal 10 s or more after the first (12.6 s), the
    next once WARN_EVERY_S has passed (72.6 s: 62.6 is too soon), none in between; every resend counted
    when it is scheduled."""
    clock = [0.0]

    async def sleep(seconds: float) -> None:
        clock[0] += seconds

    logged = Logged()
    monkeypatch.setattr(bulk, "asyncio", SimpleNamespace(sleep=sleep))
    monkeypatch.setattr(bulk, "time", SimpleNamespace(monotonic=lambda: clock[0]))
    monkeypatch.setattr(bulk, "log", logged)
    monkeypatch.setattr(bulk, "WARN_EVERY_S", 55.0)  # 60 s of doubled floats may fall short of 60.0
    counted: list[int] = []
    flooded = FloodedFor(refusals=13)  # the 13th refusal at 72.6 s, then a success at 82.6 s
    settled = await bulk.send(flooded, actions(5, 10), counted.append)  # type: ignore[arg-type]
    assert settled.shipped == 5 and settled.retried == 13 * 5 and counted == [5] * 13
    warnings = [e for e in logged.events if e["event"] == "logship.bulk.held_back"]
    assert [w["waited_s"] for w in warnings] == [12.6, 72.6]
    assert {(w["events"], w["error_type"]) for w in warnings} == {(5, "cluster_block_exception")}
    assert round(clock[0], 1) == 82.6
