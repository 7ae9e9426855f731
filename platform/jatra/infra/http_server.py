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
from typing import Any

import uvicorn
from litestar.types import ASGIApp
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from jatra.settings import Settings

TIMED_OUT = b"HTTP/1.1 408 Request Timeout\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"


class DeadlineProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with a deadline on the request head and on each pause in the body."""

    header_timeout_s: float = 10.0
    body_timeout_s: float = 10.0
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
        super().connection_made(transport)
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
        {"header_timeout_s": settings.http_header_timeout_s, "body_timeout_s": settings.http_body_timeout_s},
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
