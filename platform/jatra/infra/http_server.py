"""The HTTP server of every Jatra process: uvicorn, with deadlines for slow clients.

uvicorn times out idle keep-alive connections, but not a client that opens a connection and never finishes
its request line and headers, or declares a body and never sends it: each such client holds a connection
(and a file descriptor) for as long as it likes, and enough of them exhaust the server. Here the request
head must arrive within ``JATRA_HTTP_HEADER_TIMEOUT_S`` of the connection (or of the previous response)
and the body may pause at most ``JATRA_HTTP_BODY_TIMEOUT_S`` between chunks, as nginx's
``client_header_timeout`` and ``client_body_timeout`` do at the gateway. A client that misses either gets
408 (if no response has started) and the connection is closed.
"""

from __future__ import annotations

import asyncio
import signal
import sys
from collections.abc import Iterable
from typing import Any

import structlog
import uvicorn
from litestar.types import ASGIApp
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from jatra.settings import Settings

log = structlog.get_logger()
TIMED_OUT = b"HTTP/1.1 408 Request Timeout\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"


class CorkedTransport:
    """A connection's transport whose writes in one turn of the event loop leave together, at its end.

    uvicorn writes a response's status line and headers as soon as the app starts it, and its body in a
    second write: two sends, two TCP segments, two wake-ups for the client, for every response. The app
    sends both in one turn (nothing between them waits), so here they are held until the turn ends and
    handed to the transport at once (``writelines``: one vectored send). Anything else is the transport's.

    What it changes: back-pressure (the transport's ``pause_writing``) comes at the end of the turn, not at
    the write, which matters only to an app that writes many chunks without awaiting (none of Jatra's
    routes streams); a write the transport refuses (not bytes) fails at the flush, where the connection
    is aborted and the error logged, as uvicorn would have closed it.
    """

    __slots__ = ("_held", "_loop", "_transport")

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self._transport = transport
        self._loop = loop
        self._held: list[bytes] = []

    def write(self, data: bytes) -> None:
        if not self._held:
            self._loop.call_soon(self._flush)
        self._held.append(data)

    def writelines(self, list_of_data: Iterable[bytes]) -> None:
        for data in list_of_data:
            self.write(data)

    def _flush(self) -> None:
        held, self._held = self._held, []
        if not held or self._transport.is_closing():
            return
        try:
            if len(held) == 1:
                self._transport.write(held[0])
            else:
                self._transport.writelines(held)
        except Exception:  # the write() uvicorn made would have raised this into the app's send
            log.exception("http.write_failed")
            self._transport.abort()

    def write_eof(self) -> None:
        self._flush()
        self._transport.write_eof()

    def close(self) -> None:
        self._flush()
        self._transport.close()

    def abort(self) -> None:
        self._held = []
        self._transport.abort()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


class DeadlineProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with a deadline on the request head and on each pause in the body,
    writing each response in one send (:class:`CorkedTransport`) unless ``cork`` is off."""

    header_timeout_s: float = 10.0
    body_timeout_s: float = 10.0
    cork: bool = True
    _deadline: asyncio.TimerHandle | None = None

    def _arm(self, seconds: float) -> None:
        self._disarm()
        self._deadline = self.loop.call_later(seconds, self._expired)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _expired(self) -> None:
        self._deadline = None
        if self.transport.is_closing():
            return
        if self.cycle is None or self.cycle.response_complete or not self.cycle.response_started:
            self.transport.write(TIMED_OUT)
        self.transport.close()

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        corked: Any = CorkedTransport(transport, self.loop) if self.cork else transport
        super().connection_made(corked)
        self._arm(self.header_timeout_s)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._arm(self.header_timeout_s)

    def on_headers_complete(self) -> None:
        self._arm(self.body_timeout_s)  # a request without a body completes at once and disarms it
        super().on_headers_complete()

    def on_body(self, body: bytes) -> None:
        self._arm(self.body_timeout_s)
        super().on_body(body)

    def on_message_complete(self) -> None:
        self._disarm()
        super().on_message_complete()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)


def protocol_for(settings: Settings) -> type[DeadlineProtocol]:
    return type(
        "DeadlineProtocol",
        (DeadlineProtocol,),
        {
            "header_timeout_s": settings.http_header_timeout_s,
            "body_timeout_s": settings.http_body_timeout_s,
            "cork": settings.http_cork,
        },
    )


def server_config(app: ASGIApp, settings: Settings, **options: Any) -> uvicorn.Config:
    """uvicorn's configuration for a Jatra process: our logging, our deadlines, long keep-alive."""
    return uvicorn.Config(
        app,
        http=protocol_for(settings),
        log_config=None,
        access_log=False,
        # longer than a load balancer's idle timeout: the server must not close a connection the client
        # is about to reuse (uvicorn's 5 s default races busy clients)
        timeout_keep_alive=75,
        # the client's address (the per-address login limit counts it) from the gateway's X-Forwarded-For
        forwarded_allow_ips=settings.forwarded_allow_ips,
        **options,
    )


def exit_on_sigterm() -> None:
    """Make SIGTERM (how supervisord, Docker and Kubernetes stop a process) end it through Python's own
    exit: ``finally`` blocks, atexit, and ``logging.shutdown`` writing the log lines that wait in their
    batch. uvicorn answers SIGTERM with a graceful shutdown, then puts back the handler it found and
    raises the signal again; with the default handler there, the kernel ended the process on the spot."""
    signal.signal(signal.SIGTERM, _exit)


def _exit(signum: int, _frame: object) -> None:
    sys.exit(128 + signum)
