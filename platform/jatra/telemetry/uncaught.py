"""An exception nothing caught, logged as an ECS event through the redacting pipeline.

Python prints an uncaught exception's traceback on stderr, which supervisord writes into the process's
log file: a line the shipper sends on as written and the archive keeps for years, unredacted, and not
an event anyone can search by field. These hooks log it instead, as ``process.uncaught_exception`` at
critical (written and flushed at once), with the traceback in ``error.stack_trace`` after the redaction
has searched it. A ``KeyboardInterrupt`` is left to Python's own hook. A hook someone else installed
before (pytest's, which turns a thread's exception into a warning) is still called after the event;
Python's default hooks, which print the raw traceback, are not. Installing twice installs once.
"""

from __future__ import annotations

import sys
import threading
from types import TracebackType

import structlog

log = structlog.get_logger("jatra.uncaught")


def _log(kind: type[BaseException], value: BaseException, tb: TracebackType | None, thread: str) -> None:
    fields = {"error.type": kind.__name__, "process.thread.name": thread}
    log.critical("process.uncaught_exception", exc_info=(kind, value, tb), **fields)


_previous = sys.__excepthook__
_previous_thread = threading.__excepthook__


def _excepthook(kind: type[BaseException], value: BaseException, tb: TracebackType | None) -> None:
    if issubclass(kind, KeyboardInterrupt):
        sys.__excepthook__(kind, value, tb)
        return
    _log(kind, value, tb, threading.current_thread().name)
    if _previous is not sys.__excepthook__:
        _previous(kind, value, tb)


def _thread_excepthook(args: threading.ExceptHookArgs) -> None:
    if args.exc_value is None or issubclass(args.exc_type, SystemExit):
        return  # what threading's own hook ignores too
    thread = args.thread.name if args.thread is not None else "?"
    _log(args.exc_type, args.exc_value, args.exc_traceback, thread)
    if _previous_thread is not threading.__excepthook__:
        _previous_thread(args)


def install() -> None:
    """Log uncaught exceptions of the main thread and of every other thread (see the module docstring)."""
    global _previous, _previous_thread
    if sys.excepthook is not _excepthook:
        _previous, sys.excepthook = sys.excepthook, _excepthook
    if threading.excepthook is not _thread_excepthook:
        _previous_thread, threading.excepthook = threading.excepthook, _thread_excepthook
