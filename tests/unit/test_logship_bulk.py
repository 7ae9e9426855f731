"""A batch of log events as bulk requests: its NDJSON lines as written, split by size, in order."""

from __future__ import annotations

import pytest

from jatra.logship import bulk
from jatra.logship.documents import Action


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
