"""The generator's HTTP client against a real HTTP server (uvicorn on loopback, as the API runs): what it
sends, what it reads, connections kept and replaced, and how a request without an answer is told."""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import AsyncIterator
from typing import Any

import pytest
import uvicorn

from jatra.rush.http import Client, TransportError

Scope = dict[str, Any]


class App:
    """Echoes what it got; ``/slow`` never answers in time, ``/busy`` is a 503 with Retry-After, ``/close``
    answers with ``Connection: close``. Counts the connections it was asked on (by client port)."""

    def __init__(self) -> None:
        self.peers: list[tuple[str, int]] = []

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
            await asyncio.sleep(5)
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


@pytest.fixture
async def served() -> AsyncIterator[tuple[App, str]]:
    app = App()
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    # a short keep-alive: the server closes idle connections, as uvicorn does after its timeout
    config = uvicorn.Config(app, log_level="warning", timeout_keep_alive=1, lifespan="off")
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    async with asyncio.timeout(10):
        while not server.started:  # noqa: ASYNC110 - uvicorn's flag, no event to wait on
            await asyncio.sleep(0.01)
    yield app, f"http://127.0.0.1:{port}/api/v1"
    server.should_exit = True
    await task


async def test_a_request_is_sent_and_its_answer_read_whole(served: tuple[App, str]) -> None:
    _, url = served
    http = Client(url)
    try:
        answer = await http.post(
            "/bookings", json={"hold_id": "h", "n": [1, 2]}, params={"wait": 20, "from": "DA"},
            headers={"Authorization": "Bearer t", "Idempotency-Key": "k"},
        )  # fmt: skip
        echo = answer.json()
        assert answer.status_code == 200 and answer.retry_after_s is None
        assert (echo["method"], echo["path"], echo["query"]) == (
            "POST",
            "/api/v1/bookings",
            "wait=20&from=DA",
        )
        assert json.loads(echo["body"]) == {"hold_id": "h", "n": [1, 2]}
        sent = echo["headers"]
        assert sent["authorization"] == "Bearer t" and sent["idempotency-key"] == "k"
        assert sent["content-type"] == "application/json" and sent["content-length"] == str(len(echo["body"]))
        assert sent["host"] == url.split("/")[2]
        put = (await http.put("/faults")).json()
        assert (put["method"], put["headers"]["content-length"], put["body"]) == ("PUT", "0", "")
        busy = await http.get("/busy")
        assert (busy.status_code, busy.retry_after_s) == (503, 2.0)
    finally:
        await http.aclose()


async def test_connections_are_kept_and_a_closed_one_is_replaced(served: tuple[App, str]) -> None:
    app, url = served
    http = Client(url)
    try:
        for _ in range(3):
            assert (await http.get("/health")).status_code == 200
        assert len(set(app.peers)) == 1  # one connection, kept alive
        await asyncio.sleep(1.6)  # past the server's keep-alive: it closed the idle connection
        assert (await http.get("/health")).status_code == 200  # on a new one, no error
        assert len(set(app.peers)) == 2
        assert (await http.get("/close")).status_code == 200  # the server says it closes this one
        assert (await http.get("/health")).status_code == 200
        assert len(set(app.peers)) == 3
        answers = await asyncio.gather(*(http.get("/health") for _ in range(5)))  # at once: four more
        assert {a.status_code for a in answers} == {200} and len(set(app.peers)) == 7
    finally:
        await http.aclose()


async def test_no_answer_is_a_transport_error_with_its_reason(served: tuple[App, str]) -> None:
    _, url = served
    http = Client(url, timeout_s=0.3)
    try:
        with pytest.raises(TransportError) as late:
            await http.get("/slow")
        assert late.value.reason == "timeout"
        assert (await http.get("/health")).status_code == 200  # the pool still works
    finally:
        await http.aclose()
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))  # a port nobody listens on
    nobody = Client(f"http://127.0.0.1:{closed.getsockname()[1]}")
    try:
        with pytest.raises(TransportError) as refused:
            await nobody.get("/health")
        assert refused.value.reason == "transport_error"
    finally:
        closed.close()
        await nobody.aclose()
