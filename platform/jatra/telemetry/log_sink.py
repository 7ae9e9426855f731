"""Where rendered log lines go: the root logger's handlers, without a LogRecord for structlog's events.

structlog renders an event to its ECS line itself (`jatra.telemetry.ecs_json`); routing that line through
the standard library (a LogRecord, the caller's frame looked up, a formatter that copies the record) cost
more than the rendering. `RootHandlersLogger` is structlog's logger: it hands the finished line to every
root handler that can take one (`write_line`). The handlers are the standard library's stream and rotating
file handlers, so standard-library records keep their usual path through the same handlers, under the
same locks, and the file still rotates by renaming (what the log shipper and the archiver follow).
"""

from __future__ import annotations

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


class LineStreamHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """stdout (or any stream): one rendered line per event."""

    def write_line(self, line: str) -> None:
        with self.lock:  # type: ignore[union-attr]
            try:
                self.make_room(len(line) + 1)
                self.stream.write(line + self.terminator)
                self.flush()
            except Exception:  # see _failed
                _failed()

    def make_room(self, size: int) -> None:
        """Before a line of ``size`` characters is written (a stream needs nothing)."""


class LineFileHandler(RotatingFileHandler, LineStreamHandler):
    """JATRA_LOG_FILE: rotated by renaming (.1, .2 ...) before a line would take it past maxBytes."""

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

    debug = info = warning = warn = error = critical = exception = fatal = log = msg
