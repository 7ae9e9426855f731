"""A response's head and body leave in one send (jatra.infra.http_server.CorkedTransport): writes made in
one turn of the event loop are handed to the transport together at its end, a close sends what is held
first, and uvicorn serving through it answers exactly as without it (keep-alive, pipelining, streaming)."""

from __future__ import annotations

import asyncio
import dataclasses
from typing import Any

import pytest
import uvicorn

from jatra.infra.http_server import CorkedTransport, server_config
from jatra.settings import Settings
from jatra.stack.procs import free_port


class Recorded(asyncio.Transport):
    """A transport that keeps what it was asked to do."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[tuple[Any, ...]] = []
        self.closing = False

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self.calls.append(("write", bytes(data)))

    def writelines(self, list_of_data: Any) -> None:
        self.calls.append(("writelines", [bytes(d) for d in list_of_data]))

    def close(self) -> None:
        self.closing = True
        self.calls.append(("close",))

    def is_closing(self) -> bool:
        return self.closing

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"peername": ("127.0.0.1", 1)}.get(name, default)


async def test_writes_of_one_turn_leave_together_at_its_end() -> None:
    sent = Recorded()
    corked = CorkedTransport(sent, asyncio.get_running_loop())
    corked.write(b"HTTP/1.1 200 OK\r\n\r\n")
    corked.write(b"body")
    assert sent.calls == []
    await asyncio.sleep(0)
    assert sent.calls == [("writelines", [b"HTTP/1.1 200 OK\r\n\r\n", b"body"])]
    corked.write(b"next")
    await asyncio.sleep(0)
    assert sent.calls[-1] == ("write", b"next")
    assert corked.get_extra_info("peername") == ("127.0.0.1", 1)  # anything else is the transport's


async def test_a_close_sends_what_is_held_first_and_nothing_goes_to_a_closed_transport() -> None:
    sent = Recorded()
    corked = CorkedTransport(sent, asyncio.get_running_loop())
    corked.write(b"HTTP/1.1 408 Request Timeout\r\n\r\n")
    corked.close()
    await asyncio.sleep(0)
    assert sent.calls == [("write", b"HTTP/1.1 408 Request Timeout\r\n\r\n"), ("close",)]
    corked.write(b"late")
    await asyncio.sleep(0)
    assert sent.calls[-1] == ("close",)


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """/stream answers in three chunks with a pause between them; anything else, its path."""
    if scope["type"] != "http":
        return
    if scope["path"] == "/stream":
        await send(
            {"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]}
        )
        for part in (b"one,", b"two,", b"three"):
            await send({"type": "http.response.body", "body": part, "more_body": True})
            await asyncio.sleep(0.01)
        await send({"type": "http.response.body", "body": b""})
        return
    body = scope["path"].encode()
    headers = [(b"content-type", b"text/plain"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def exchange(port: int, request: bytes, until: bytes) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(request)
    received = b""
    while until not in received:
        chunk = await asyncio.wait_for(reader.read(65536), 5)
        assert chunk, received
        received += chunk
    writer.close()
    return received


@pytest.mark.parametrize("cork", [True, False], ids=["corked", "as-uvicorn-writes"])
async def test_uvicorn_answers_the_same_through_it(cork: bool) -> None:
    settings = dataclasses.replace(Settings(), http_cork=cork)
    port = free_port()
    server = uvicorn.Server(server_config(app, settings, host="127.0.0.1", port=port, lifespan="off"))
    serving = asyncio.create_task(server.serve())
    try:
        for _ in range(500):
            if server.started:
                break
            await asyncio.sleep(0.01)
        pipelined = b"GET /a HTTP/1.1\r\nHost: t\r\n\r\nGET /bb HTTP/1.1\r\nHost: t\r\n\r\n"
        both = await exchange(port, pipelined, b"/bb")
        first, second = both.split(b"HTTP/1.1 200 OK\r\n")[1:]
        assert first.endswith(b"content-length: 2\r\n\r\n/a") and second.endswith(b"\r\n\r\n/bb")
        streamed = await exchange(port, b"GET /stream HTTP/1.1\r\nHost: t\r\n\r\n", b"0\r\n\r\n")
        assert streamed.startswith(b"HTTP/1.1 200 OK\r\n") and b"transfer-encoding: chunked" in streamed
        body = streamed.split(b"\r\n\r\n", 1)[1]
        assert body == b"4\r\none,\r\n4\r\ntwo,\r\n5\r\nthree\r\n0\r\n\r\n"
    finally:
        server.should_exit = True
        await serving
