"""The generator's HTTP client against real HTTP servers on loopback (uvicorn, as the API runs, and a raw
one that closes a kept connection when asked again): what it sends, what it reads, connections kept and
replaced, which requests go again after a closed connection, and how a request without an answer is told."""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
from collections.abc import AsyncIterator
from typing import Any

import pytest
import uvicorn

from jatra.rush import http as client_module
from jatra.rush.http import Client, TransportError

Scope = dict[str, Any]


class App:
    """Echoes what it got; ``/slow`` answers only once released, ``/busy`` is a 503 with Retry-After,
    ``/close`` answers with ``Connection: close``. Records the connection (client port) of each request."""

    def __init__(self) -> None:
        self.peers: list[tuple[str, int]] = []
        self.release = asyncio.Event()

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        self.peers.append(scope["client"])
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        path = scope["path"].removeprefix("/api/v1")
        if path == "/slow":
            await self.release.wait()
        headers = [(b"content-type", b"application/json")]
        status = 200
        if path == "/busy":
            status, headers = 503, [*headers, (b"retry-after", b"2")]
        if path == "/close":
            headers.append((b"connection", b"close"))
        echo = {
            "method": scope["method"],
            "path": scope["path"],
            "query": scope["query_string"].decode(),
            "headers": {k.decode(): v.decode() for k, v in scope["headers"]},
            "body": body.decode(),
        }
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": json.dumps(echo).encode()})


async def _serve(keep_alive_s: int) -> AsyncIterator[tuple[App, str]]:
    app = App()
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    config = uvicorn.Config(app, log_level="warning", timeout_keep_alive=keep_alive_s, lifespan="off")
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    async with asyncio.timeout(10):
        while not server.started:  # noqa: ASYNC110 - uvicorn's flag, no event to wait on
            await asyncio.sleep(0.01)
    yield app, f"http://127.0.0.1:{sock.getsockname()[1]}/api/v1"
    app.release.set()
    server.should_exit = True
    await task


@contextlib.asynccontextmanager
async def client(url: str, **options: Any) -> AsyncIterator[Client]:
    http = Client(url, **options)
    try:
        yield http
    finally:
        await http.aclose()


@pytest.fixture
async def served() -> AsyncIterator[tuple[App, str]]:
    async for pair in _serve(keep_alive_s=60):
        yield pair


@pytest.fixture
async def closes_idle() -> AsyncIterator[tuple[App, str]]:
    """A server that closes a connection idle for a second (uvicorn's keep-alive timeout)."""
    async for pair in _serve(keep_alive_s=1):
        yield pair


async def test_a_request_is_sent_and_its_answer_read_whole(served: tuple[App, str]) -> None:
    _, url = served
    async with client(url) as http:
        answer = await http.post(
            "/bookings", json={"name": "রহিম", "n": [1, 2]}, params={"wait": 20, "from": "DA"},
            headers={"Authorization": "Bearer t", "Idempotency-Key": "k"},
        )  # fmt: skip
        echo = answer.json()
        assert answer.status_code == 200 and answer.retry_after_s is None
        assert (echo["method"], echo["path"]) == ("POST", "/api/v1/bookings")
        assert echo["query"] == "wait=20&from=DA"
        assert json.loads(echo["body"]) == {"name": "রহিম", "n": [1, 2]}
        sent = echo["headers"]
        assert sent["authorization"] == "Bearer t" and sent["idempotency-key"] == "k"
        assert sent["content-type"] == "application/json"
        assert sent["content-length"] == str(len(echo["body"].encode()))  # bytes, not characters
        assert sent["host"] == url.split("/")[2]
        put = (await http.put("/faults")).json()
        assert (put["method"], put["headers"]["content-length"], put["body"]) == ("PUT", "0", "")
        busy = await http.get("/busy")
        assert (busy.status_code, busy.retry_after_s) == (503, 2.0)
        with pytest.raises(ValueError, match="line break"):
            await http.get("/health", headers={"X-Injected": "a\r\nHost: elsewhere"})


async def test_connections_are_kept_unless_the_server_closes_them(served: tuple[App, str]) -> None:
    app, url = served
    async with client(url) as http:
        for _ in range(3):
            assert (await http.get("/health")).status_code == 200
        assert len(set(app.peers)) == 1  # one connection, kept alive
        assert (await http.get("/close")).status_code == 200  # the server says it closes this one
        assert (await http.get("/health")).status_code == 200
        assert len(set(app.peers)) == 2 and app.peers[-1] != app.peers[-2]
        answers = await asyncio.gather(*(http.get("/health") for _ in range(5)))  # at once: four more
        assert {a.status_code for a in answers} == {200} and len(set(app.peers)) == 6


async def test_a_connection_the_server_closed_while_idle_is_replaced(closes_idle: tuple[App, str]) -> None:
    app, url = closes_idle
    async with client(url) as http:
        assert (await http.get("/health")).status_code == 200
        # well past the server's keep-alive of 1 s (it closed the idle connection), short of the client's 4 s
        await asyncio.sleep(2.5)
        assert (await http.post("/holds", json={})).status_code == 200  # on a new one, no error
        assert len(set(app.peers)) == 2


async def test_a_connection_idle_too_long_is_not_trusted(
    served: tuple[App, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    app, url = served
    monkeypatch.setattr(client_module, "IDLE_S", 0.0)  # every kept connection is too old at once
    async with client(url) as http:
        for _ in range(2):
            assert (await http.get("/health")).status_code == 200
        assert len(set(app.peers)) == 2


@pytest.fixture
async def closing_server() -> AsyncIterator[tuple[str, list[str]]]:
    """A raw HTTP server that answers the first request on a connection and closes the connection, without
    a byte, when a second request comes on it (a keep-alive close racing that request). Yields its URL
    and the request lines it answered."""
    answered: list[str] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        first = True
        while head := await reader.readuntil(b"\r\n\r\n"):
            length = next(
                (
                    int(line.split(b":")[1])
                    for line in head.split(b"\r\n")
                    if line.lower().startswith(b"content-length")
                ),
                0,
            )
            await reader.readexactly(length)
            if not first:
                writer.close()
                return
            first = False
            answered.append(head.split(b"\r\n")[0].decode())
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
            await writer.drain()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    yield f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}", answered
    server.close()


async def test_only_a_request_safe_to_repeat_is_sent_again(closing_server: tuple[str, list[str]]) -> None:
    url, answered = closing_server
    async with client(url) as http:
        assert (await http.get("/a")).status_code == 200
        assert (await http.get("/b")).status_code == 200  # the kept connection closed: again on a new one
        assert answered == ["GET /a HTTP/1.1", "GET /b HTTP/1.1"]
        with pytest.raises(TransportError) as post:  # a POST is not: the server might have run it
            await http.post("/c", json={})
        assert post.value.reason == "transport_error"
        assert answered == ["GET /a HTTP/1.1", "GET /b HTTP/1.1"]


async def test_no_answer_is_a_transport_error_with_its_reason(served: tuple[App, str]) -> None:
    _, url = served
    async with client(url, timeout_s=2) as http:
        with pytest.raises(TransportError) as late:
            await http.get("/slow")
        assert late.value.reason == "timeout"
        assert (await http.get("/health")).status_code == 200  # the pool still works
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))  # a port nobody listens on
    try:
        async with client(f"http://127.0.0.1:{closed.getsockname()[1]}") as nobody:
            with pytest.raises(TransportError) as refused:
                await nobody.get("/health")
            assert refused.value.reason == "transport_error"
    finally:
        closed.close()
    with pytest.raises(ValueError, match="plain http"):
        Client("https://127.0.0.1:443")
