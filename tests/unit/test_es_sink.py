"""The Elasticsearch stand-in's sink (``make bench``): each bulk item checked and answered as Elasticsearch
answers it, then dropped."""

from __future__ import annotations

import json

from jatra.stack.es_standin import State, _split_bulk, _sunk


def bulk(*lines: object) -> bytes:
    return b"".join(json.dumps(line).encode() + b"\n" for line in lines)


def statuses(answer: dict[str, object]) -> list[int]:
    items = answer["items"]
    assert isinstance(items, list)
    return [next(iter(item.values()))["status"] for item in items]


def test_a_document_is_created_once_and_a_second_create_of_its_id_is_a_conflict() -> None:
    state = State(upstream="http://unused")
    create = {"create": {"_index": "logs-jatra.api-dev", "_id": "a1"}}
    first = _sunk(state, _split_bulk(bulk(create, {"message": "one"})))
    again = _sunk(state, _split_bulk(bulk(create, {"message": "one"}, {"create": {"_id": "b2"}}, {"m": 2})))
    assert statuses(first) == [201] and first["errors"] is False
    assert statuses(again) == [409, 201] and again["errors"] is True
    assert state.sunk == {"a1", "b2"}


def test_a_source_that_is_not_a_json_object_is_refused_and_the_rest_taken() -> None:
    state = State(upstream="http://unused")
    body = bulk({"create": {"_id": "x"}}, [1, 2], {"index": {"_id": "y"}}, {"ok": True})
    body += b'{"create": {"_id": "z"}}\n{not json\n'
    answer = _sunk(state, _split_bulk(body))
    assert statuses(answer) == [400, 201, 400]
    assert state.sunk == {"y"}


def test_a_delete_answers_whether_the_id_was_taken() -> None:
    state = State(upstream="http://unused")
    _sunk(state, _split_bulk(bulk({"index": {"_id": "d"}}, {"m": 1})))
    answer = _sunk(state, _split_bulk(bulk({"delete": {"_id": "d"}}, {"delete": {"_id": "d"}})))
    assert statuses(answer) == [200, 404] and state.sunk == set()
