"""A client that never finishes its request gets 408 and loses the connection; a slow but steady one is
served. Against the API replicas as `jatra up` runs them (uvicorn with Jatra's deadlines, 2 s in tests)."""

from __future__ import annotations

import json
import socket
import time
import uuid

import pytest

from jatra.settings import Settings
from jatra.stack.manager import Stack
from tests.integration.payflow import log_lines

pytestmark = pytest.mark.integration
VERIFY = b"POST /api/v1/tickets/verify HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"


def answer(port: int, sent: bytes, wait_s: float = 20) -> tuple[bytes, float]:
    """What the server answers to ``sent`` (then silence), and after how long it closed the connection."""
    with socket.create_connection(("127.0.0.1", port), timeout=wait_s) as conn:
        conn.sendall(sent)
        started, received = time.monotonic(), b""
        while chunk := conn.recv(4096):
            received += chunk
        return received, time.monotonic() - started


@pytest.mark.parametrize(
    "sent",
    [
        b"",  # connects and says nothing
        b"GET /api/v1/stations HTTP/1.1\r\nHost: t\r\n",  # headers never finished
        VERIFY + b"Content-Length: 100\r\n\r\n" + b'{"qr":',  # declared body not sent
        VERIFY + b"Transfer-Encoding: chunked\r\n\r\n5\r\n" + b'{"qr"\r\n',  # chunks never finished
    ],
    ids=["silent", "unfinished-headers", "short-body", "unfinished-chunks"],
)
def test_a_client_that_never_finishes_gets_408_and_is_cut_off(
    jatra_processes_running: Stack, settings: Settings, sent: bytes
) -> None:
    received, after_s = answer(settings.ports.api, sent)
    assert received.startswith(b"HTTP/1.1 408 "), received
    assert after_s < 20  # closed by the server's deadline (2 s here), not by this test giving up


def test_a_cut_off_body_is_a_408_in_the_access_log_not_a_500(
    jatra_processes_running: Stack, settings: Settings
) -> None:
    replica = settings.ports.app("api-1")
    rid = uuid.uuid4().hex  # this request's own event, however late the log's write
    answer(replica, VERIFY + f"X-Request-ID: {rid}\r\n".encode() + b"Content-Length: 100\r\n\r\n" + b'{"qr":')
    deadline = time.monotonic() + 10
    while not (
        mine := [
            e for e in log_lines(settings, "api-1") if e.get("http", {}).get("request", {}).get("id") == rid
        ]
    ):
        assert time.monotonic() < deadline, "no access event for the cut-off request"
        time.sleep(0.1)
    [event] = mine
    assert event["message"] == "http.request" and event["http"]["route"] == "/api/v1/tickets/verify"
    assert event["http"]["response"]["status_code"] == 408


def test_a_slow_but_steady_client_is_served(jatra_processes_running: Stack, settings: Settings) -> None:
    body = json.dumps({"qr": "JT2:not-a-ticket"}).encode()
    with socket.create_connection(("127.0.0.1", settings.ports.api), timeout=20) as conn:
        conn.sendall(VERIFY[:30])
        time.sleep(1)  # under the 2 s deadline between the start of the request and its last header
        conn.sendall(VERIFY[30:] + f"Content-Length: {len(body)}\r\n\r\n".encode() + body[:10])
        time.sleep(1)  # a pause in the body, under the deadline
        conn.sendall(body[10:])
        reply = conn.recv(4096)
    assert reply.startswith(b"HTTP/1.1 200 "), reply
