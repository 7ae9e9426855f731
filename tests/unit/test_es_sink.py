"""The Elasticsearch stand-in's sink (``make bench``): each bulk item checked and answered as Elasticsearch
answers it, then dropped."""

from __future__ import annotations

import json

import pytest

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
    assert answer["errors"] is False  # a delete that finds nothing is not an error


def test_an_id_left_to_elasticsearch_is_never_a_conflict() -> None:
    state = State(upstream="http://unused")
    taken = _sunk(state, _split_bulk(bulk({"create": {"_id": "0"}}, {"m": 0})))
    answer = _sunk(state, _split_bulk(bulk({"create": {}}, {"m": 1}, {"create": {}}, {"m": 2})))
    assert statuses(taken) == [201] and statuses(answer) == [201, 201]
    ids = [item["create"]["_id"] for item in answer["items"]]  # type: ignore[attr-defined]
    assert len(set(ids)) == 2 and "0" not in ids and state.sunk == {"0"}


def test_an_action_line_that_is_not_json_takes_nothing_of_its_request() -> None:
    state = State(upstream="http://unused")
    body = bulk({"create": {"_id": "first"}}, {"m": 1}) + b"{nope\n" + bulk({"m": 2})
    with pytest.raises(ValueError):  # the handler answers it 400 as a whole
        _sunk(state, _split_bulk(body))
    assert state.sunk == set()
