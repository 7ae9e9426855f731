"""The cost of writing one batch of spans as OTLP JSON (`make bench-spans`, pytest-benchmark): the
official protobuf encoder followed by protobuf's MessageToDict and json (the way before), against the
direct encoder (jatra.telemetry.otlp_json) and msgspec. Every process exports every span it samples,
so this runs on every request; py-spy had the old way at about half of the CPU our own code took in an
API replica. `make test` runs it once, untimed, so it cannot rot."""

from __future__ import annotations

import json

import msgspec
import pytest
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan
from pytest_benchmark.fixture import BenchmarkFixture
from tests.unit.test_otlp_json import reference, spans_of_every_shape

from jatra.telemetry.otlp_json import encode

#: the BatchSpanProcessor's default export batch
BATCH = 512


def batch() -> list[ReadableSpan]:
    shape = spans_of_every_shape(Resource.create({"service.name": "jatra-api"}))
    return (shape * (BATCH // len(shape) + 1))[:BATCH]


@pytest.mark.benchmark(group="spans")
def test_export_a_batch_the_way_before(benchmark: BenchmarkFixture) -> None:
    spans = batch()
    line = benchmark(lambda: json.dumps(reference(spans), separators=(",", ":")))
    assert json.loads(line) == encode(spans)


@pytest.mark.benchmark(group="spans")
def test_export_a_batch_directly(benchmark: BenchmarkFixture) -> None:
    spans = batch()
    line = benchmark(lambda: msgspec.json.encode(encode(spans)))
    assert json.loads(line) == reference(spans)
