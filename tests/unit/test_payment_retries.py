"""Payment retries back off exponentially with jitter, within a time budget, against a real refused port."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest
import stamina.instrumentation
from stamina.instrumentation import RetryDetails

from jatra.infra.breaker import breakers
from jatra.payments.client import ProviderClient, ProviderUnavailable
from jatra.payments.worker import charge


@pytest.fixture
def waits() -> Iterator[list[float]]:
    seen: list[float] = []
    before = stamina.instrumentation.get_on_retry_hooks()

    def hook(details: RetryDetails) -> None:
        seen.append(details.wait_for)

    stamina.instrumentation.set_on_retry_hooks([hook])
    yield seen
    stamina.instrumentation.set_on_retry_hooks(before)


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])  # nothing listens once this socket is closed


async def test_charges_back_off_exponentially_with_jitter_until_the_budget_is_spent(
    waits: list[float],
) -> None:
    client = ProviderClient(f"http://127.0.0.1:{closed_port()}", timeout_s=1)
    try:
        with pytest.raises(ProviderUnavailable) as failed:
            await charge(client, breakers(threshold=1000, reset_s=1), "k", 100, "bkash", budget_s=3.0)
    finally:
        await client.close()
    assert not failed.value.ambiguous  # refused connections: nothing can have been charged
    assert len(waits) >= 4
    for n, wait in enumerate(waits[:4]):
        base = 0.1 * 2**n  # wait_initial 0.1 s, doubling
        assert base <= wait <= base + 0.5  # plus up to 0.5 s of jitter
    assert len({round(w, 6) for w in waits}) == len(waits)  # jittered: no two waits alike
    assert all(w <= 2.0 + 1e-9 for w in waits)  # capped at wait_max
