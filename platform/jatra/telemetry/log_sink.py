"""Where rendered log lines go: the root logger's handlers, without a LogRecord for structlog's events.

structlog renders an event to its ECS line itself (`jatra.telemetry.ecs_json`); routing that line through
the standard library (a LogRecord, the caller's frame looked up, a formatter that copies the record) cost
more than the rendering. `RootHandlersLogger` is structlog's logger: it hands the finished line to every
root handler that can take one (`write_line`). The handlers are the standard library's stream and rotating
file handlers, so standard-library records keep their usual path through the same handlers, under the
same locks, and the file still rotates by renaming (what the log shipper and the archiver follow).

Lines are written in batches: on an event loop a line waits up to ``BATCH_S`` (or until ``BATCH_BYTES``
wait) and goes out with the others in one write, instead of a write and a flush per line (a system call
costs ~110 µs of CPU on the machines measured, and supervisord pays one more to read each). A warning or
worse is written at once, with whatever waits before it; so is a line logged outside an event loop; and
everything waiting is written when the process exits (``logging.shutdown`` flushes every handler). A
process killed outright (SIGKILL, OOM) loses at most its last ``BATCH_S`` of info lines.
"""

from __future__ import annotations

import asyncio
import logging
import sys
import traceback
from logging.handlers import RotatingFileHandler
from typing import Any


def _failed() -> None:
    """A line that cannot be written never fails the caller: told on stderr, as `Handler.handleError` does."""
    if logging.raiseExceptions and sys.stderr:
        sys.stderr.write("--- Logging error ---\n")
        traceback.print_exc(file=sys.stderr)


#: the longest a line waits to be written with others, and how much may wait before it is written at once
BATCH_S = 0.1
BATCH_BYTES = 64 * 1024


class LineStreamHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """stdout (or any stream): one rendered line per event, written in batches (see the module)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._start_batching()

    def _start_batching(self) -> None:
        self._waiting: list[str] = []
        self._size = 0
        self._due: asyncio.TimerHandle | None = None
        self._due_loop: asyncio.AbstractEventLoop | None = None

    def write_line(self, line: str) -> None:
        with self.lock:  # type: ignore[union-attr]
            try:
                self._waiting.append(line)
                self._size += len(line) + 1
                if self._size >= BATCH_BYTES or not self._later():
                    self._write_waiting()
            except Exception:  # see _failed
                _failed()

    def emit(self, record: logging.LogRecord) -> None:
        """A standard-library record: the same path, so lines keep their order; a warning or worse at once."""
        try:
            line = self.format(record)
        except Exception:
            self.handleError(record)
            return
        self.write_line(line)
        if record.levelno >= logging.WARNING:
            self._flush_quietly()

    def flush(self) -> None:
        """Write what waits (it may raise, as the standard library's does: ``logging.shutdown`` expects)."""
        with self.lock:  # type: ignore[union-attr]
            self._write_waiting()

    def _flush_due(self) -> None:
        """The timer's call (on its loop's thread): the next line on that loop starts a new timer."""
        with self.lock:  # type: ignore[union-attr]
            self._due = self._due_loop = None
        self._flush_quietly()

    def _flush_quietly(self) -> None:
        try:
            self.flush()
        except Exception:  # see _failed
            _failed()

    def _later(self) -> bool:
        """Have the running event loop write what waits in ``BATCH_S``; False outside an event loop."""
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return False
        if self._due is None or self._due_loop is not loop:  # a closed loop's timer never fires
            self._due, self._due_loop = loop.call_later(BATCH_S, self._flush_due), loop
        return True

    def _write_waiting(self) -> None:
        # A timer still due is left to fire, writing nothing or the lines since: cancelling it from another
        # thread (a line logged by a thread is written at once) is not safe on uvloop.
        if self._waiting:
            text = "".join(line + self.terminator for line in self._waiting)
            self._waiting.clear()
            self._size = 0
            self.make_room(len(text))
            self.stream.write(text)
        if self.stream and hasattr(self.stream, "flush"):
            self.stream.flush()

    def make_room(self, size: int) -> None:
        """Before ``size`` characters are written (a stream needs nothing)."""


class LineFileHandler(RotatingFileHandler, LineStreamHandler):
    """JATRA_LOG_FILE: rotated by renaming (.1, .2 ...) before a batch would take it past maxBytes."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)  # the file handlers' own: they skip LineStreamHandler.__init__
        self._start_batching()

    emit = LineStreamHandler.emit  # rotation is make_room's, batch by batch

    def make_room(self, size: int) -> None:
        if self.stream is None:
            self.stream = self._open()
        if self.maxBytes > 0 and self.stream.tell() + size >= self.maxBytes:
            self.doRollover()
            if self.stream is None:
                self.stream = self._open()


def _caller_module() -> str | None:
    frame = sys._getframe(2)  # the module that asked for a logger, as structlog's stdlib factory finds it
    while frame is not None:
        name = frame.f_globals.get("__name__", "")
        if not (name.startswith("structlog") or name == __name__):
            return str(name)
        frame = frame.f_back  # type: ignore[assignment]
    return None


class RootHandlersLogger:
    """structlog's wrapped logger: the rendered line to each root handler that writes lines."""

    def __init__(self, name: str | None = None, *_: Any) -> None:
        self.name = name or _caller_module()

    def msg(self, line: str) -> None:
        for handler in logging.root.handlers:
            write = getattr(handler, "write_line", None)
            if write is not None:
                write(line)

    def urgent(self, line: str) -> None:
        """A warning or worse: written at once, with the lines waiting before it."""
        for handler in logging.root.handlers:
            write = getattr(handler, "write_line", None)
            if write is not None:
                write(line)
                try:
                    handler.flush()
                except Exception:  # see _failed
                    _failed()

    debug = info = log = msg
    warning = warn = error = critical = exception = fatal = urgent
