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

    def abort(self) -> None:
        self.closing = True
        self.calls.append(("abort",))

    def write_eof(self) -> None:
        self.calls.append(("write_eof",))

    def pause_reading(self) -> None:
        self.calls.append(("pause_reading",))

    def resume_reading(self) -> None:
        self.calls.append(("resume_reading",))

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


async def test_writelines_write_eof_and_abort_keep_the_order() -> None:
    sent = Recorded()
    corked = CorkedTransport(sent, asyncio.get_running_loop())
    corked.write(b"a")
    corked.writelines([b"b", b"c"])
    corked.write_eof()
    assert sent.calls == [("writelines", [b"a", b"b", b"c"]), ("write_eof",)]
    corked.write(b"never sent")
    corked.abort()
    await asyncio.sleep(0)
    assert sent.calls[-1] == ("abort",) and ("write", b"never sent") not in sent.calls


class Refusing(Recorded):
    def write(self, data: bytes | bytearray | memoryview) -> None:
        raise TypeError("data argument must be a bytes-like object")


async def test_a_write_refused_at_the_flush_aborts_the_connection() -> None:
    sent = Refusing()
    corked = CorkedTransport(sent, asyncio.get_running_loop())
    corked.write(b"x")
    await asyncio.sleep(0)
    assert sent.calls == [("abort",)]


async def test_uvicorn_writes_a_response_in_one_send_through_jatras_protocol() -> None:
    """The wiring: Jatra's protocol wraps the connection's transport, so a response's head and body reach
    the transport as one writelines; with the cork off, as uvicorn's two writes."""
    for cork, expected in ((True, ["writelines"]), (False, ["write", "write"])):
        settings = dataclasses.replace(Settings(), http_cork=cork)
        config = server_config(app, settings, lifespan="off")
        config.load()
        protocol = config.http_protocol_class(  # type: ignore[call-arg]
            config=config, server_state=uvicorn.server.ServerState(), app_state={}
        )
        sent = Recorded()
        protocol.connection_made(sent)
        protocol.data_received(b"GET /hello HTTP/1.1\r\nHost: t\r\n\r\n")
        for _ in range(100):
            if any(c[0] in ("write", "writelines") for c in sent.calls) and len(sent.calls) >= len(expected):
                break
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.05)
        writes = [c for c in sent.calls if c[0] in ("write", "writelines")]
        assert [c[0] for c in writes] == expected, sent.calls
        assert b"".join(b"".join(c[1]) if c[0] == "writelines" else c[1] for c in writes).endswith(
            b"\r\n\r\n/hello"
        )
        protocol.connection_lost(None)


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
