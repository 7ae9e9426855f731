"""A log line -> the bulk action that indexes it: data stream names, ids, wrapping of what is not JSON."""

from __future__ import annotations

import json

import pytest

from jatra.infra.logfiles import Line
from jatra.logship.documents import UNSTRUCTURED, action, data_stream, part, source_dataset


def line(raw: bytes, source: str = "payments", offset: int = 0) -> Line:
    return Line(source, dev=1, ino=2, offset=offset, raw=raw)


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
    assert got["_op_type"] == "create"  # a data stream takes only creates; a second one is a 409
    assert got["_index"] == "logs-jatra.payments-dev"
    assert got["_id"] == line(ECS).id
    source = got["_source"]
    assert {k: v for k, v in source.items() if k != "data_stream"} == json.loads(ECS)
    assert source["data_stream"] == {"type": "logs", "dataset": "jatra.payments", "namespace": "dev"}


def test_the_same_line_read_twice_gets_the_same_index_and_id_and_another_line_another_id() -> None:
    first, again = action(line(ECS), "dev"), action(line(ECS), "dev")
    assert (first["_index"], first["_id"]) == (again["_index"], again["_id"])
    assert action(line(ECS, offset=len(ECS) + 1), "dev")["_id"] != first["_id"]  # same bytes, elsewhere
    wrapped_once, wrapped_again = action(line(b"oops"), "dev"), action(line(b"oops"), "dev")
    assert (wrapped_once["_index"], wrapped_once["_id"]) == (wrapped_again["_index"], wrapped_again["_id"])


@pytest.mark.parametrize(
    "raw", [b"Traceback (most recent call last):", b"[1, 2]", b'"a string"', b"42", b"{not json", b"\xff\xfe"]
)
def test_what_is_not_a_json_object_is_wrapped_not_dropped(raw: bytes) -> None:
    got = action(line(raw, source="api-2", offset=120), "dev", "/var/log")
    source = got["_source"]
    assert got["_index"] == "logs-jatra.api-dev"  # api-2 is a replica of the api
    assert source["message"] == raw.decode("utf-8", errors="replace")
    assert source["tags"] == [UNSTRUCTURED]
    assert source["event"]["dataset"] == "jatra.api" and source["service"]["name"] == "jatra-api"
    assert source["log"] == {"file": {"path": "/var/log/api-2.log"}, "offset": 120}
    assert source["@timestamp"].endswith("Z")
    json.dumps(source)  # serialisable as it is


def test_a_json_object_without_a_timestamp_or_dataset_gets_them() -> None:
    source = action(line(b'{"message": "hello"}', source="reaper"), "dev")
    assert source["_index"] == "logs-jatra.reaper-dev"
    assert isinstance(source["_source"]["@timestamp"], str)
    dotted = action(line(b'{"message": "x", "event.dataset": "jatra.outbox"}'), "dev")
    assert dotted["_index"] == "logs-jatra.outbox-dev"


def test_the_dataset_of_a_process_drops_the_replica_number() -> None:
    assert source_dataset("api-1") == "jatra.api"
    assert source_dataset("payment-provider") == "jatra.payment-provider"
    assert source_dataset("logship") == "jatra.logship"
