"""The payment provider's HTTP API, as the payment worker and reconciliation call it."""

from __future__ import annotations

import time
from dataclasses import dataclass

import httpx

from jatra.telemetry import catalogue as c
from jatra.telemetry.metrics import counter, histogram, trace_exemplar

ATTEMPTS = counter(c.PAYMENT_ATTEMPTS)
DURATION = histogram(c.PAYMENT_DURATION)


class ProviderUnavailable(Exception):
    """The provider failed, timed out or refused: retryable, and counted by the circuit breaker.

    ``ambiguous``: the request may have been carried out before the answer was lost (a read timeout, a
    connection dropped mid-answer), so a charge may exist; a refused connection or a 5xx is not."""

    def __init__(self, message: str, *, ambiguous: bool = False) -> None:
        super().__init__(message)
        self.ambiguous = ambiguous


@dataclass(frozen=True, slots=True)
class ChargeResult:
    key: str
    status: str  # CAPTURED, DECLINED or REFUNDED


class ProviderClient:
    def __init__(self, base_url: str, timeout_s: float) -> None:
        self.http = httpx.AsyncClient(base_url=base_url, timeout=timeout_s)

    async def close(self) -> None:
        await self.http.aclose()

    async def charge(self, key: str, amount: int, method: str) -> ChargeResult:
        """Charge, idempotently by key. Raises ProviderUnavailable on anything but an answer."""
        t0 = time.perf_counter()
        try:
            response = await self.http.post(
                "/charges", json={"idempotency_key": key, "amount": amount, "method": method}
            )
        except httpx.TimeoutException as exc:
            ATTEMPTS.labels("timeout").inc()
            sent = not isinstance(exc, httpx.ConnectTimeout)
            raise ProviderUnavailable(f"timed out: {exc}", ambiguous=sent) from exc
        except httpx.HTTPError as exc:
            ATTEMPTS.labels("error").inc()
            sent = isinstance(exc, httpx.RemoteProtocolError | httpx.ReadError)
            raise ProviderUnavailable(str(exc) or type(exc).__name__, ambiguous=sent) from exc
        finally:
            DURATION.observe(time.perf_counter() - t0, trace_exemplar())
        if response.status_code >= 500:
            ATTEMPTS.labels("error").inc()
            raise ProviderUnavailable(f"provider answered {response.status_code}")
        response.raise_for_status()
        result = ChargeResult(key, str(response.json()["status"]))
        ATTEMPTS.labels("captured" if result.status == "CAPTURED" else "declined").inc()
        return result

    async def lookup(self, key: str) -> ChargeResult | None:
        """The outcome of a key, None if the provider never saw it."""
        try:
            response = await self.http.get(f"/charges/{key}")
        except httpx.HTTPError as exc:
            raise ProviderUnavailable(str(exc)) from exc
        if response.status_code == 404:
            return None
        if response.status_code >= 500:
            raise ProviderUnavailable(f"provider answered {response.status_code}")
        response.raise_for_status()
        return ChargeResult(key, str(response.json()["status"]))

    async def refund(self, key: str) -> None:
        try:
            response = await self.http.post(f"/charges/{key}/refund")
        except httpx.HTTPError as exc:
            raise ProviderUnavailable(str(exc)) from exc
        if response.status_code >= 500:
            raise ProviderUnavailable(f"provider answered {response.status_code}")
