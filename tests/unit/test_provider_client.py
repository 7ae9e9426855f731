"""The provider client tells a charge that cannot have happened from one that may have: only a connection
never made is sure to have charged nothing. Against real sockets on this machine: a port nobody listens
on, a server that never answers, one that hangs up after reading the request, and the answers a provider
gives (5xx, 404, another 4xx)."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
from opentelemetry.instrumentation.utils import is_instrumentation_enabled
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF

from jatra.payments.client import ProviderClient, ProviderRefused, ProviderUnavailable
from jatra.telemetry.edge_sampling import quiet_unless_sampled
from tests.unit.test_payment_retries import closed_port

Serve = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


async def _read_request(reader: asyncio.StreamReader) -> None:
    head = await reader.readuntil(b"\r\n\r\n")
    length = next(
        (
            int(line.split(b":")[1])
            for line in head.split(b"\r\n")
            if line.lower().startswith(b"content-length")
        ),
        0,
    )
    await reader.readexactly(length)


def answering(status: int, body: bytes = b"{}") -> Serve:
    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await _read_request(reader)
        head = f"HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n"
        head += "Connection: close\r\n"
        writer.write(head.encode() + b"\r\n" + body)
        await writer.drain()
        writer.close()

    return serve


async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await _read_request(reader)
    await asyncio.sleep(30)


async def hanging_up(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await _read_request(reader)  # the charge reached the provider; the answer never comes back
    writer.close()


@pytest.fixture
async def provider(request: pytest.FixtureRequest) -> AsyncIterator[ProviderClient]:
    server = await asyncio.start_server(request.param, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    client = ProviderClient(f"http://127.0.0.1:{port}/", timeout_s=0.5)
    yield client
    await client.close()
    server.close()
    await server.wait_closed()


async def test_a_refused_connection_charged_nothing() -> None:
    client = ProviderClient(f"http://127.0.0.1:{closed_port()}", timeout_s=1)
    with pytest.raises(ProviderUnavailable) as failed:
        await client.charge("k", 100, "bkash")
    await client.close()
    assert not failed.value.ambiguous


async def test_a_connection_that_never_opens_charged_nothing() -> None:
    """A provider whose accept queue is full: the connection is never made, and the call says so (it is
    not mistaken for the whole call timing out, which would leave a booking for reconciliation)."""
    with socket.socket() as full:
        full.bind(("127.0.0.1", 0))
        full.listen(0)  # never accepted: the queue fills, and later SYNs go unanswered
        address = full.getsockname()
        queued = [socket.create_connection(address, timeout=1)]  # the one the queue holds
        client = ProviderClient(f"http://127.0.0.1:{address[1]}", timeout_s=1)
        try:
            with pytest.raises(ProviderUnavailable) as failed:
                await client.charge("k", 100, "bkash")
        finally:
            await client.close()
            for conn in queued:
                conn.close()
    assert "connecting" in str(failed.value) and not failed.value.ambiguous


@pytest.mark.parametrize("provider", [silent, hanging_up], indirect=True, ids=["no-answer", "hung-up"])
async def test_a_charge_sent_but_unanswered_may_have_happened(provider: ProviderClient) -> None:
    with pytest.raises(ProviderUnavailable) as failed:
        await provider.charge("k", 100, "bkash")
    assert failed.value.ambiguous


@pytest.mark.parametrize("provider", [answering(503)], indirect=True)
async def test_a_5xx_is_unavailable_and_not_ambiguous(provider: ProviderClient) -> None:
    with pytest.raises(ProviderUnavailable) as failed:
        await provider.charge("k", 100, "bkash")
    assert not failed.value.ambiguous


@pytest.mark.parametrize("provider", [answering(404)], indirect=True)
async def test_a_key_the_provider_never_saw(provider: ProviderClient) -> None:
    assert await provider.lookup("k") is None
    assert await provider.refund("k") == "none"  # a provider that cannot void has nothing to refund
    with pytest.raises(ProviderRefused):  # voiding is not optional: without it a failure is not safe
        await provider.void("k")
    with pytest.raises(ProviderRefused):
        await provider.charge("k", 100, "bkash")


@pytest.mark.parametrize("provider", [answering(422)], indirect=True)
async def test_another_4xx_is_refused_not_retried(provider: ProviderClient) -> None:
    with pytest.raises(ProviderRefused):
        await provider.charge("k", 100, "bkash")
    with pytest.raises(ProviderRefused):
        await provider.lookup("k")
    # logged (payment.refund_refused), not raised: asking again changes nothing
    assert await provider.refund("k") == "refused"


@pytest.mark.parametrize("provider", [answering(200, b'{"status": "CAPTURED"}')], indirect=True)
async def test_an_answer(provider: ProviderClient) -> None:
    assert (await provider.charge("k", 100, "bkash")).status == "CAPTURED"
    assert (await provider.lookup("k")).status == "CAPTURED"  # type: ignore[union-attr]
    assert (await provider.void("k")).captured  # a void leaves a capture as it is


@pytest.mark.parametrize(
    ("provider", "outcome"),
    [
        (answering(200, b'{"status": "REFUNDED"}'), "refunded"),
        (answering(200, b'{"status": "DECLINED"}'), "none"),
    ],
    indirect=["provider"],
)
async def test_a_refund_says_whether_money_went_back(provider: ProviderClient, outcome: str) -> None:
    assert await provider.refund("k") == outcome


@pytest.mark.parametrize("provider", [answering(200, b'{"status": "VOIDED"}')], indirect=True)
async def test_a_voided_key(provider: ProviderClient) -> None:
    assert not (await provider.charge("k", 100, "bkash")).captured
    assert (await provider.void("k")).status == "VOIDED"
    assert await provider.refund("k") == "voided"


def hanging_up_once() -> Serve:
    """Hangs up on the first request after reading it, answers VOIDED to the next."""
    seen: list[int] = []
    voided = answering(200, b'{"status": "VOIDED"}')

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        seen.append(1)
        if len(seen) == 1:
            await hanging_up(reader, writer)
        else:
            await voided(reader, writer)

    return serve


@pytest.mark.parametrize("provider", [hanging_up_once()], indirect=True)
async def test_a_void_whose_answer_is_lost_is_asked_again(provider: ProviderClient) -> None:
    """Voiding is idempotent, so its lost answer costs a second request, not a booking left undecided."""
    assert (await provider.void("k")).status == "VOIDED"


async def test_the_trace_reaches_the_provider_even_with_the_instrumentation_quiet() -> None:
    """A message of an unsampled trace is handled with the client instrumentations quiet (edge sampling);
    the charge still tells the provider its trace, unsampled, so the provider's logs carry the booking's
    trace id and it does not start a trace of its own."""
    heads: list[bytes] = []

    async def recording(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        heads.append(await reader.readuntil(b"\r\n\r\n"))
        writer.close()

    server = await asyncio.start_server(recording, "127.0.0.1", 0)
    client = ProviderClient(f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}/", timeout_s=0.5)
    try:
        tracer = TracerProvider(sampler=ALWAYS_OFF).get_tracer("test")
        with tracer.start_as_current_span("consume") as span, quiet_unless_sampled():
            assert not is_instrumentation_enabled()
            with pytest.raises(ProviderUnavailable):
                await client.charge("k", 100, "bkash")
    finally:
        await client.close()
        server.close()
        await server.wait_closed()
    [head] = heads
    traceparent = next(line for line in head.split(b"\r\n") if line.lower().startswith(b"traceparent:"))
    _, trace_id, _, flags = traceparent.split(b":", 1)[1].strip().decode().split("-")
    assert trace_id == f"{span.get_span_context().trace_id:032x}"
    assert int(flags, 16) & 0x01 == 0  # not sampled (0x02 says the trace id is random)
