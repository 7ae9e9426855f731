"""Log lines are written in batches on an event loop: one write for many lines, in their order; a warning,
a line outside a loop, a full batch and the process's exit write at once."""

from __future__ import annotations

import asyncio
import io
import json
import logging
from pathlib import Path

import pytest

from jatra.telemetry import log_sink
from jatra.telemetry.log_sink import LineFileHandler, LineStreamHandler, RootHandlersLogger


class Counted(io.StringIO):
    """A stream that counts its writes."""

    def __init__(self) -> None:
        super().__init__()
        self.writes = 0

    def write(self, text: str) -> int:
        self.writes += 1
        return super().write(text)

    def lines(self) -> list[str]:
        return self.getvalue().splitlines()


def record(message: str, level: int) -> logging.LogRecord:
    return logging.LogRecord("uvicorn.error", level, __file__, 1, message, None, None)


async def test_lines_logged_on_a_loop_go_out_together_in_their_order() -> None:
    stream = Counted()
    handler = LineStreamHandler(stream)
    for n in range(50):
        handler.write_line(f"line {n}")
    assert stream.writes == 0  # waiting
    await asyncio.sleep(log_sink.BATCH_S * 3)
    assert stream.lines() == [f"line {n}" for n in range(50)]
    assert stream.writes == 1


async def test_a_warning_is_written_at_once_after_the_lines_before_it() -> None:
    stream = Counted()
    handler = LineStreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(message)s"))
    handler.write_line("info 1")
    handler.emit(record("stdlib info", logging.INFO))  # a standard-library record takes the same path
    assert stream.writes == 0
    handler.emit(record("stdlib warning", logging.WARNING))
    assert stream.lines() == ["info 1", "stdlib info", "stdlib warning"]


async def test_structlog_warnings_are_written_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    stream = Counted()
    handler = LineStreamHandler(stream)
    monkeypatch.setattr(logging.root, "handlers", [handler])
    logger = RootHandlersLogger("test")
    logger.info("an info")
    assert stream.lines() == []
    logger.warning("a warning")
    assert stream.lines() == ["an info", "a warning"]


async def test_a_full_batch_is_written_without_waiting() -> None:
    stream = Counted()
    handler = LineStreamHandler(stream)
    line = "x" * 1000
    for _ in range(log_sink.BATCH_BYTES // 1000 + 1):
        handler.write_line(line)
    assert stream.writes == 1 and len(stream.lines()) == log_sink.BATCH_BYTES // 1000 + 1


def test_a_line_logged_outside_an_event_loop_is_written_at_once() -> None:
    stream = Counted()
    LineStreamHandler(stream).write_line("from a thread or a script")
    assert stream.lines() == ["from a thread or a script"]


def test_what_waits_when_the_loop_ends_is_written_at_exit() -> None:
    stream = Counted()
    handler = LineStreamHandler(stream)

    async def log_and_leave() -> None:
        handler.write_line("the last words")

    asyncio.run(log_and_leave())  # the loop closes before its timer fires
    assert stream.lines() == []
    handler.flush()  # what logging.shutdown does for every handler at exit
    assert stream.lines() == ["the last words"]


async def test_a_loop_after_a_closed_one_still_writes_on_time() -> None:
    stream = Counted()
    handler = LineStreamHandler(stream)
    await asyncio.to_thread(asyncio.run, _log(handler, "on a loop now closed"))
    handler.write_line("on this loop")
    await asyncio.sleep(log_sink.BATCH_S * 3)
    assert stream.lines() == ["on a loop now closed", "on this loop"]


async def _log(handler: LineStreamHandler, line: str) -> None:
    handler.write_line(line)


async def test_the_log_file_rotates_between_batches(tmp_path: Path) -> None:
    path = tmp_path / "api.log"
    handler = LineFileHandler(filename=str(path), maxBytes=3000, backupCount=5)
    handler.setFormatter(logging.Formatter("%(message)s"))
    try:
        for n in range(10):
            for k in range(10):
                line = json.dumps({"n": n, "k": k, "pad": "x" * 40})
                if k == 5:  # a standard-library record, in its place among the others
                    handler.emit(record(line, logging.INFO))
                else:
                    handler.write_line(line)
            await asyncio.sleep(log_sink.BATCH_S * 2)
    finally:
        handler.close()  # writes what waits
    files = [path.with_name(f"api.log.{i}") for i in range(5, 0, -1)] + [path]
    lines = [json.loads(line) for f in files if f.exists() for line in f.read_text().splitlines()]
    assert all(f.stat().st_size <= 3000 for f in files if f.exists())
    assert path.with_name("api.log.1").exists()
    assert [(x["n"], x["k"]) for x in lines] == sorted((x["n"], x["k"]) for x in lines)
    assert lines[-1]["n"] == 9 and lines[-1]["k"] == 9
