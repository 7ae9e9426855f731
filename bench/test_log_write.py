"""The cost of writing log lines (`make bench-logs`, pytest-benchmark): 100 rendered ECS lines into a file,
a write and a flush per line (the way before) against the way now (`jatra.telemetry.log_sink`: on an event
loop the lines wait and go out in one write). Both on the same running loop, through the same handler.
`make test` runs it once, untimed, so it cannot rot."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from pytest_benchmark.fixture import BenchmarkFixture

from jatra.telemetry.log_sink import LineFileHandler

LINE = json.dumps(
    {
        "@timestamp": "2026-12-03T17:30:00.123Z",
        "log.level": "info",
        "message": "http.request",
        "ecs.version": "1.6.0",
        "service": {"name": "api", "environment": "local"},
        "http": {"request": {"method": "GET"}, "response": {"status_code": 200}},
        "url": {"path": "/api/v1/journeys/1234/seats", "query": "from=DA&to=CGP"},
        "event": {"duration": 1234567},
        "trace": {"id": "4bf92f3577b34da6a3ce929d0e0e4736"},
        "span": {"id": "00f067aa0ba902b7"},
    }
)
LINES = 100


@pytest.fixture
def handler(tmp_path: Path) -> Iterator[LineFileHandler]:
    sink = LineFileHandler(filename=str(tmp_path / "api.log"), maxBytes=0)
    yield sink
    sink.close()


@pytest.fixture
def loop() -> Iterator[asyncio.AbstractEventLoop]:
    running = asyncio.new_event_loop()
    yield running
    running.close()


async def _write(handler: LineFileHandler, *, flush_each: bool) -> None:
    for _ in range(LINES):
        handler.write_line(LINE)
        if flush_each:
            handler.flush()
    handler.flush()


@pytest.mark.parametrize("way", ["a write per line", "batched"])
def test_writing_a_hundred_lines(
    benchmark: BenchmarkFixture,
    handler: LineFileHandler,
    loop: asyncio.AbstractEventLoop,
    tmp_path: Path,
    way: str,
) -> None:
    benchmark(lambda: loop.run_until_complete(_write(handler, flush_each=way == "a write per line")))
    written = (tmp_path / "api.log").read_text().splitlines()
    assert written and all(line == LINE for line in written)
