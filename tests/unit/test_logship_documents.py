"""A log line -> the bulk action that indexes it: data stream names, ids, wrapping of what is not JSON."""

from __future__ import annotations

import json
from typing import Any

import pytest

from jatra.infra.logfiles import Line
from jatra.logship.documents import UNSTRUCTURED, Action, action, data_stream, part, source_dataset


def line(raw: bytes, source: str = "payments", offset: int = 0) -> Line:
    return Line(source, dev=1, ino=2, offset=offset, raw=raw)


def document_of(got: Action) -> dict[str, Any]:
    """The document as Elasticsearch will read it."""
    decoded: dict[str, Any] = json.loads(got.document)
    return decoded


ECS = (
    b'{"@timestamp":"2026-11-23T12:15:58.376Z","log.level":"info","message":"booking.transition",'
    b'"ecs.version":"1.6.0","event":{"dataset":"jatra.payments"},"booking_id":"b1","to_state":"FAILED"}'
)


@pytest.mark.parametrize(
    ("dataset", "namespace", "expected"),
    [
        ("jatra.api", "dev", "logs-jatra.api-dev"),
        ("jatra.payment-provider", "dev", "logs-jatra.payment_provider-dev"),  # no '-' inside a part
        ("jatra.alert-receiver", "Prod-EU", "logs-jatra.alert_receiver-prod_eu"),
        ("Jatra.API", "a/b*c", "logs-jatra.api-a_b_c"),
        ("", "dev", "logs-unknown-dev"),
    ],
)
def test_data_stream_names_follow_elastics_scheme(dataset: str, namespace: str, expected: str) -> None:
    assert data_stream(dataset, namespace) == expected
    assert len(part("x" * 300)) == 100


def test_a_json_line_is_indexed_as_written_plus_its_data_stream() -> None:
    got = action(line(ECS), "dev")
    # a data stream takes only creates; a second one is a 409
    assert json.loads(got.header()) == {"create": {"_index": "logs-jatra.payments-dev", "_id": line(ECS).id}}
    assert got.index == "logs-jatra.payments-dev" and got.id == line(ECS).id
    source = document_of(got)
    assert {k: v for k, v in source.items() if k != "data_stream"} == json.loads(ECS)
    assert source["data_stream"] == {"type": "logs", "dataset": "jatra.payments", "namespace": "dev"}
    # written in before the closing brace: the line's own bytes, in its own order, are kept
    assert got.document.startswith(ECS[:-1] + b',"data_stream":')


@pytest.mark.parametrize(
    "raw",
    [
        ECS,
        b"{}",
        b'{ "@timestamp": "2026-11-23T12:15:58Z" }  ',
        b'{"@timestamp":"t","event.dataset":"jatra.outbox","event":{"dataset":"jatra.api"}}',
        b'{"@timestamp":"t","event.dataset":null,"event":{"dataset":"jatra.api"}}',
        b'{"@timestamp":"t","event":{"dataset":""}}',
        b'{"@timestamp":"t","event":"not an object"}',
        b'{"@timestamp":12,"message":"a number for a timestamp"}',
        b'{"@timestamp":"t","data_stream":{"type":"metrics"},"message":"its own data stream"}',
        '{"@timestamp":"t","message":"কলকাতা \u00e9"}'.encode(),
        b'{"@timestamp":"t","message":"' + bytes([0xFF]) + b' not UTF-8"}',
        b'{"@timestamp":"t","nested":{"event":{"dataset":"jatra.wrong"}},"x":[1,{"a":null}]}',
        b'{"@timestamp":"t","message":"a carriage return after"}\r',
        b'{"@timestamp":"t","message":"a lone surrogate \\ud800"}',
        b'{"@timestamp":"t","data\\u005fstream":{"type":"metrics"}}',  # the key written escaped
        b'{"@timestamp":"t","x":NaN}',
    ],
)
def test_what_is_read_of_a_line_gives_the_same_document_as_decoding_it_whole(raw: bytes) -> None:
    """The short way (two fields read, the data stream written in) against the long way every line took
    before: the same data stream, id and document."""
    got = action(line(raw, source="api-1"), "dev")
    text = raw.decode("utf-8", errors="replace")
    doc = json.loads(text)
    if not isinstance(doc.get("@timestamp"), str):
        doc["@timestamp"] = document_of(got)["@timestamp"]  # the shipper's clock
    event = doc.get("event")
    dataset = (
        doc["event.dataset"]
        if "event.dataset" in doc
        else event.get("dataset")
        if isinstance(event, dict)
        else None
    )
    dataset = dataset if isinstance(dataset, str) and dataset else "jatra.api"
    doc["data_stream"] = {"type": "logs", "dataset": dataset, "namespace": "dev"}
    assert got.index == data_stream(dataset, "dev")
    assert document_of(got) == doc
    json.loads(got.document, object_pairs_hook=unique)  # Elasticsearch refuses a key written twice


def unique(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    keys = [k for k, _ in pairs]
    assert len(keys) == len(set(keys)), f"a key written twice: {keys}"
    return dict(pairs)


def test_the_same_line_read_twice_gets_the_same_index_and_id_and_another_line_another_id() -> None:
    first, again = action(line(ECS), "dev"), action(line(ECS), "dev")
    assert (first.index, first.id) == (again.index, again.id)
    assert action(line(ECS, offset=len(ECS) + 1), "dev").id != first.id  # same bytes, elsewhere
    wrapped_once, wrapped_again = action(line(b"oops"), "dev"), action(line(b"oops"), "dev")
    assert (wrapped_once.index, wrapped_once.id) == (wrapped_again.index, wrapped_again.id)


@pytest.mark.parametrize(
    "raw", [b"Traceback (most recent call last):", b"[1, 2]", b'"a string"', b"42", b"{not json", b"\xff\xfe"]
)
def test_what_is_not_a_json_object_is_wrapped_not_dropped(raw: bytes) -> None:
    got = action(line(raw, source="api-2", offset=120), "dev", "/var/log")
    source = document_of(got)
    assert got.index == "logs-jatra.api-dev"  # api-2 is a replica of the api
    assert source["message"] == raw.decode("utf-8", errors="replace")
    assert source["tags"] == [UNSTRUCTURED]
    assert source["event"]["dataset"] == "jatra.api" and source["service"]["name"] == "jatra-api"
    assert source["log"] == {"file": {"path": "/var/log/api-2.log"}, "offset": 120}
    assert source["@timestamp"].endswith("Z")
    json.dumps(source)  # serialisable as it is


def test_a_wrapped_lines_text_is_redacted() -> None:
    raw = b"RuntimeError: could not reach rahim@example.com at +8801712345678"
    message = document_of(action(line(raw), "dev"))["message"]
    assert "rahim" not in message and "1712345678" not in message
    assert message.startswith("RuntimeError: could not reach ")


def test_a_json_object_without_a_timestamp_or_dataset_gets_them() -> None:
    got = action(line(b'{"message": "hello"}', source="reaper"), "dev")
    assert got.index == "logs-jatra.reaper-dev"
    assert isinstance(document_of(got)["@timestamp"], str)
    dotted = action(line(b'{"message": "x", "event.dataset": "jatra.outbox"}'), "dev")
    assert dotted.index == "logs-jatra.outbox-dev"


def test_the_dataset_of_a_process_drops_the_replica_number() -> None:
    assert source_dataset("api-1") == "jatra.api"
    assert source_dataset("payment-provider") == "jatra.payment-provider"
    assert source_dataset("logship") == "jatra.logship"


def test_what_is_not_json_after_an_object_is_wrapped_not_spliced() -> None:
    got = action(line(b'{"@timestamp":"t"} and then some', source="api-1"), "dev")
    assert document_of(got)["tags"] == [UNSTRUCTURED]


def test_a_line_that_writes_a_key_twice_goes_out_as_written() -> None:
    """Elasticsearch refuses it (a key twice is an error there) and the shipper sets it aside; structlog,
    which writes every Jatra line, cannot write a key twice."""
    raw = b'{"@timestamp":"t","a":1,"a":2}'
    assert action(line(raw), "dev").document.startswith(raw[:-1] + b',"data_stream":')
