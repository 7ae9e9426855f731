"""The load generator's HTTP client: HTTP/1.1 keep-alive on asyncio's transports, parsed by httptools.

The generator must measure the system, not itself. httpx cost about 1.7-1.9 ms of CPU per request here
against 0.11-0.16 ms for aiohttp (3,000 GETs of /health, same machine, same server), and aiohttp's own
machinery (a request and a response object, a URL, header multidicts, timers and stream readers per
request) was still most of the generator's CPU in a rush. A passenger's requests are simple: a few
headers, a JSON body, an answer read whole. So each is written as bytes on a pooled connection and its
answer parsed by httptools (the C parser uvicorn uses), nothing else. See bench/results/rush-client/.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Any, cast
from urllib.parse import urlencode, urlsplit

import httptools
import msgspec

_decode = msgspec.json.Decoder().decode
_encode = msgspec.json.Encoder().encode
#: a connection idle longer than this is closed rather than reused, well inside any server's keep-alive
#: timeout (uvicorn's default is 5 s), so a server rarely closes one just as a request goes out on it
IDLE_S = 4.0
#: methods sent once more on a new connection when a reused one was closed before any byte of an answer
#: came (a server's keep-alive close racing the request); a POST never is, it could have been run
RETRIED = frozenset({"GET", "PUT", "DELETE", "OPTIONS"})


class TransportError(Exception):
    """The request got no answer: ``reason`` is "timeout" or "transport_error"."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class Answer:
    status_code: int
    content: bytes
    retry_after_s: float | None = None  # the Retry-After header, in seconds, when the answer has one

    def json(self) -> Any:
        return _decode(self.content)


class _Connection(asyncio.Protocol):
    """One keep-alive connection: one request at a time, its answer set on the future ``send`` returns."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.waiter: asyncio.Future[Answer] | None = None
        self.body: list[bytes] = []
        self.retry_after: bytes = b""
        self.received = False  # any byte of the current answer
        self.reusable = True
        self.idle_since = 0.0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast("asyncio.Transport", transport)  # a TCP transport (uvloop's is no subclass)

    def data_received(self, data: bytes) -> None:
        self.received = True
        try:
            self.parser.feed_data(data)
        except Exception as exc:  # a parser error, an upgrade: this connection is done
            self._fail(exc)
            self.close()

    def connection_lost(self, exc: Exception | None) -> None:
        self._fail(exc or ConnectionResetError("the server closed the connection"))

    def on_header(self, name: bytes, value: bytes) -> None:
        if name.lower() == b"retry-after":
            self.retry_after = value

    def on_body(self, body: bytes) -> None:
        self.body.append(body)

    def on_message_complete(self) -> None:
        if self.parser.get_status_code() < 200:  # an interim answer (100 Continue, 103): the real one follows
            self.body, self.retry_after = [], b""
            return
        wait = float(self.retry_after) if self.retry_after.isdigit() else None
        answer = Answer(self.parser.get_status_code(), b"".join(self.body), wait)
        self.reusable = self.reusable and self.parser.should_keep_alive()
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_result(answer)

    def send(self, request: bytes) -> asyncio.Future[Answer]:
        assert self.transport is not None
        if self.transport.is_closing():  # asyncio would drop the bytes and the answer never come
            raise ConnectionResetError("the connection is closed")
        self.body, self.retry_after, self.received = [], b"", False
        self.waiter = asyncio.get_running_loop().create_future()
        self.transport.write(request)
        return self.waiter

    def _fail(self, exc: BaseException) -> None:
        self.reusable = False
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_exception(exc)

    def close(self) -> None:
        self.reusable = False
        if self.transport is not None:
            self.transport.close()


class Client:
    """A pool of keep-alive connections bound to one source address (the API rate-limits per client
    address), at most ``limit`` at once."""

    def __init__(
        self, base_url: str, *, local_address: str | None = None, timeout_s: float = 30, limit: int = 256
    ) -> None:
        url = urlsplit(base_url.rstrip("/"))
        if url.scheme != "http":
            raise ValueError(f"plain http only, not {url.scheme!r}: {base_url}")
        self.base_url = base_url.rstrip("/")
        self._host, self._port = url.hostname or "127.0.0.1", url.port or 80
        self._prefix = url.path
        self._head = f"Host: {self._host}:{self._port}\r\n".encode()
        self._local = (local_address, 0) if local_address else None
        self._timeout = timeout_s
        self._idle: list[_Connection] = []
        self._open: set[_Connection] = set()
        self._slots = asyncio.Semaphore(limit)

    async def request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> Answer:
        if method == "HEAD":  # its answer has a Content-Length but no body: the parser would wait for one
            raise ValueError("HEAD is not supported")
        target = self._prefix + path + (f"?{urlencode(params)}" if params else "")
        fields = (headers or {}).items()
        if any("\r" in f or "\n" in f for field in fields for f in field):
            raise ValueError("a header with a line break")
        lines = [f"{method} {target} HTTP/1.1\r\n".encode(), self._head]
        lines += [f"{k}: {v}\r\n".encode() for k, v in fields]
        body = b"" if json is None else _encode(json)
        if json is not None:
            lines.append(b"Content-Type: application/json\r\n")
        if body or method in {"POST", "PUT"}:
            lines.append(b"Content-Length: %d\r\n" % len(body))
        request = b"".join(lines) + b"\r\n" + body
        deadline = asyncio.timeout(self._timeout)  # waiting for a free slot included, as aiohttp's total
        try:
            async with deadline, self._slots:
                return await self._exchange(request, method in RETRIED)
        except Exception as exc:
            raise TransportError("timeout" if deadline.expired() else "transport_error") from exc

    async def _exchange(self, request: bytes, retry: bool) -> Answer:
        """Send on an idle connection, or a new one. With ``retry``, a request on a reused connection that
        the server closed before any byte of an answer (its keep-alive timeout, racing the request) is
        sent once more on a new one."""
        conn = self._take_idle()
        if conn is None:
            return await self._send(await self._connect(), request)
        try:
            return await self._send(conn, request)
        except OSError:
            if not retry or conn.received:
                raise
        return await self._send(await self._connect(), request)

    async def _send(self, conn: _Connection, request: bytes) -> Answer:
        try:
            answer = await conn.send(request)
        except BaseException:  # no answer, a timeout or a cancellation mid-answer: the connection is done
            self._drop(conn)
            raise
        if conn.reusable:
            conn.idle_since = time.monotonic()
            self._idle.append(conn)
        else:
            self._drop(conn)
        return answer

    def _take_idle(self) -> _Connection | None:
        fresh = time.monotonic() - IDLE_S
        while self._idle:
            conn = self._idle.pop()
            if conn.reusable and conn.idle_since > fresh:  # else closed, or idle too long to trust
                return conn
            self._drop(conn)
        return None

    async def _connect(self) -> _Connection:
        loop = asyncio.get_running_loop()
        _, conn = await loop.create_connection(_Connection, self._host, self._port, local_addr=self._local)
        self._open.add(conn)
        return conn

    def _drop(self, conn: _Connection) -> None:
        conn.close()
        self._open.discard(conn)

    async def get(self, path: str, **kwargs: Any) -> Answer:
        return await self.request("GET", path, **kwargs)

    async def post(self, path: str, **kwargs: Any) -> Answer:
        return await self.request("POST", path, **kwargs)

    async def put(self, path: str, **kwargs: Any) -> Answer:
        return await self.request("PUT", path, **kwargs)

    async def aclose(self) -> None:
        for conn in list(self._open):
            self._drop(conn)
        self._idle.clear()
        await asyncio.sleep(0)  # let the transports close
