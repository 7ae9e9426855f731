"""The cost of one access event (`make bench-logs`, pytest-benchmark): the way before (structlog ->
standard-library LogRecord -> ProcessorFormatter -> ecs-logging's StructlogFormatter -> stream) against
structlog's chain now (it renders with msgspec and hands the line to the handler, `jatra.telemetry.log_sink`)
and the direct way the API writes it (`jatra.telemetry.access_log.AccessLog`, the same line).
Both run the same processors (trace context, service fields, redaction, the event counter) and write to
/dev/null. Every API request writes one such event. `make test` runs it once, untimed, so it cannot rot."""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import ecs_logging
import pytest
import structlog
from pytest_benchmark.fixture import BenchmarkFixture

from jatra.settings import load_settings
from jatra.telemetry.access_log import AccessLog
from jatra.telemetry.logs import (
    ACCESS_LOGGER,
    LOG_EVENTS,
    _ServiceFields,
    _shared_processors,
    configure_logging,
)

ACCESS = {
    "http.request.method": "GET",
    "url.path": "/api/v1/journeys/1234/seats",
    "url.query": "from=DA&to=CGP",
    "http.response.status_code": 200,
    "event.duration": 1_234_567,
    "http.route": "/api/v1/journeys/{journey_id:int}/seats",
    "http.request.id": "4f1c2a9e-rush",
}


class Lines(logging.StreamHandler):  # type: ignore[type-arg]
    """/dev/null, keeping the last line written so that the two ways can be compared."""

    def __init__(self) -> None:
        super().__init__(Path(os.devnull).open("w"))  # noqa: SIM115 - closed by the fixture
        self.last = ""

    def emit(self, record: logging.LogRecord) -> None:
        self.last = self.format(record)
        super().emit(record)

    def write_line(self, line: str) -> None:
        self.last = line
        self.stream.write(line + "\n")
        self.flush()


@pytest.fixture
def devnull() -> Iterator[Lines]:
    configure_logging(load_settings({}), "api")
    root = logging.getLogger()
    saved = root.handlers[:]
    sink = Lines()
    root.handlers[:] = [sink]
    yield sink
    root.handlers[:] = saved
    sink.stream.close()
    configure_logging(load_settings({}), "unit")


def before(sink: Lines) -> Any:
    shared = _shared_processors("api", load_settings({}).environment)
    sink.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=shared,
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                ecs_logging.StructlogFormatter(),
            ],
        )
    )
    return structlog.wrap_logger(
        logging.getLogger("jatra.http"),
        processors=[
            structlog.stdlib.filter_by_level,
            *shared,
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        wrapper_class=structlog.stdlib.BoundLogger,
    )


def document(line: str) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(line)
    doc.pop("@timestamp")
    return doc


@pytest.mark.benchmark(group="logs")
def test_an_access_event_the_way_before(benchmark: BenchmarkFixture, devnull: Lines) -> None:
    log = before(devnull)
    benchmark(lambda: log.info("http.request", **ACCESS))
    assert document(devnull.last)["http"]["route"] == ACCESS["http.route"]


@pytest.mark.benchmark(group="logs")
def test_an_access_event_now(benchmark: BenchmarkFixture, devnull: Lines) -> None:
    log = structlog.get_logger("jatra.http")
    benchmark(lambda: log.info("http.request", **ACCESS))
    now = document(devnull.last)
    before(devnull).info("http.request", **ACCESS)
    assert now == document(devnull.last)  # the same document either way


@pytest.mark.benchmark(group="logs")
def test_an_access_event_written_directly(benchmark: BenchmarkFixture, devnull: Lines) -> None:
    """The way the API writes it (`jatra.telemetry.access_log.AccessLog`): no processor chain."""
    service = _ServiceFields("api", load_settings({}).environment).fields
    access = AccessLog(service, ACCESS_LOGGER, logging.INFO, LOG_EVENTS.labels("info"))
    benchmark(lambda: access.write("http.request", ACCESS))
    direct = document(devnull.last)
    structlog.get_logger(ACCESS_LOGGER).info("http.request", **ACCESS)
    assert direct == document(devnull.last)  # the same document either way
