"""The payment provider's HTTP API, as the payment worker and reconciliation call it.

aiohttp, not httpx: ~0.1-0.2 ms of CPU a request here against ~1.7-1.9 ms (measured for the load
generator, `jatra/rush/http.py`); httpx was 13.5 % of the payment worker's busy samples. Each request is
a client span (OpenTelemetry's aiohttp trace config, on this session only), and carries the trace to the
provider in ``traceparent``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import aiohttp
import stamina
import structlog
from opentelemetry import propagate
from opentelemetry.instrumentation.aiohttp_client import create_trace_config

from jatra.telemetry import catalogue as c
from jatra.telemetry.metrics import counter, histogram, trace_exemplar

log = structlog.get_logger()
ATTEMPTS = counter(c.PAYMENT_ATTEMPTS)
DURATION = histogram(c.PAYMENT_DURATION)
#: an idle connection is dropped before a common server keep-alive (5 s, uvicorn's default) closes it under
#: a request (a request on a connection the server is closing fails as a possible charge: a lookup follows)
KEEPALIVE_S = 4.0


class ProviderUnavailable(Exception):
    """The provider failed, timed out or refused: retryable, and counted by the circuit breaker.

    ``ambiguous``: the request may have been carried out before the answer was lost (a read timeout, a
    connection dropped mid-answer), so a charge may exist; a refused connection or a 5xx is not."""

    def __init__(self, message: str, *, ambiguous: bool = False) -> None:
        super().__init__(message)
        self.ambiguous = ambiguous


class ProviderRefused(Exception):
    """A 4xx: the provider will not do it, however often asked (a bug on our side, not an outage)."""


@dataclass(frozen=True, slots=True)
class ChargeResult:
    key: str
    status: str  # CAPTURED, DECLINED, REFUNDED or VOIDED (see :meth:`ProviderClient.void`)

    @property
    def captured(self) -> bool:
        return self.status == "CAPTURED"

    @property
    def voided(self) -> bool:
        """Given up on before any charge: nothing was taken, and nothing can be."""
        return self.status == "VOIDED"


def _unavailable(exc: Exception) -> ProviderUnavailable:
    """What a failed exchange means: only a connection never made (refused, or its timeout) is sure to
    have charged nothing; anything later may have reached the provider."""
    if isinstance(exc, aiohttp.ConnectionTimeoutError):
        return ProviderUnavailable(f"timed out connecting: {exc}")
    if isinstance(exc, TimeoutError):
        return ProviderUnavailable(f"timed out: {exc}", ambiguous=True)
    if isinstance(exc, aiohttp.ClientConnectorError):
        return ProviderUnavailable(str(exc) or type(exc).__name__)
    return ProviderUnavailable(str(exc) or type(exc).__name__, ambiguous=True)


class ProviderClient:
    def __init__(self, base_url: str, timeout_s: float) -> None:
        self.base = base_url.rstrip("/")
        # the connection's own limit below the whole call's, so that a connection never made fails as
        # ConnectionTimeoutError (surely no charge), not as the whole call's timeout (maybe one)
        self.timeout = aiohttp.ClientTimeout(total=timeout_s, connect=timeout_s / 2)
        self._http: aiohttp.ClientSession | None = None

    @property
    def http(self) -> aiohttp.ClientSession:
        """Made on first use, on the running event loop (aiohttp wants one)."""
        if self._http is None or self._http.closed:
            self._http = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(keepalive_timeout=KEEPALIVE_S),
                timeout=self.timeout,
                trace_configs=[create_trace_config()],
            )
        return self._http

    async def close(self) -> None:
        if self._http is not None:
            await self._http.close()

    async def _call(self, method: str, path: str, *, missing_ok: bool = False, **kwargs: Any) -> Any:
        """The answer's JSON body (None for a 404 when ``missing_ok``); a failed exchange or a 5xx raises
        ProviderUnavailable, any other 4xx ProviderRefused."""
        # The trace goes to the provider even when the client instrumentation is quiet (a message of an
        # unsampled trace, jatra.telemetry.edge_sampling), so it keeps the booking's trace id and does not
        # sample either; when it is not quiet, the instrumentation puts its client span's context here.
        headers: dict[str, str] = {}
        propagate.inject(headers)
        try:
            async with self.http.request(
                method, self.base + path, allow_redirects=False, headers=headers, **kwargs
            ) as response:
                status = response.status
                body = await response.json() if status < 300 else None
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise _unavailable(exc) from exc
        if status >= 500:
            raise ProviderUnavailable(f"provider answered {status}")
        if status == 404 and missing_ok:
            return None
        if status >= 400:
            raise ProviderRefused(f"provider answered {status} to {method} {path}")
        return body

    async def charge(self, key: str, amount: int, method: str) -> ChargeResult:
        """Charge, idempotently by key. Raises ProviderUnavailable on anything but an answer."""
        t0 = time.perf_counter()
        try:
            body = await self._call(
                "POST", "/charges", json={"idempotency_key": key, "amount": amount, "method": method}
            )
        except ProviderUnavailable as exc:
            ATTEMPTS.labels("timeout" if isinstance(exc.__cause__, TimeoutError) else "error").inc()
            raise
        finally:
            DURATION.observe(time.perf_counter() - t0, trace_exemplar())
        result = ChargeResult(key, str(body["status"]))
        ATTEMPTS.labels({"CAPTURED": "captured", "VOIDED": "voided"}.get(result.status, "declined")).inc()
        return result

    async def lookup(self, key: str) -> ChargeResult | None:
        """The outcome of a key, None if the provider never saw it."""
        body = await self._call("GET", f"/charges/{key}", missing_ok=True)
        return None if body is None else ChargeResult(key, str(body["status"]))

    async def void(self, key: str) -> ChargeResult:
        """What became of a key, made final: a key the provider never charged is voided, so that a charge
        with it still on its way takes nothing. Asked before failing a booking as unpaid, where a lookup's
        "never seen" could be overtaken by a charge in flight. Idempotent, so asked twice when the first
        answer is lost (aiohttp retries a GET on a connection the server had closed, never a POST)."""
        async for attempt in stamina.retry_context(on=ProviderUnavailable, attempts=2, wait_initial=0.05):
            with attempt:
                body = await self._call("POST", f"/charges/{key}/void")
        return ChargeResult(key, str(body["status"]))

    async def refund(self, key: str) -> str:
        """Give a key's money back; the outcome: ``refunded``, ``voided`` (never charged, and now a charge
        still on its way takes nothing), ``none`` (a provider that answers 404 has nothing to refund) or
        ``refused`` (another 4xx: logged and not retried, since asking again would not change it)."""
        try:
            body = await self._call("POST", f"/charges/{key}/refund", missing_ok=True)
        except ProviderRefused as exc:
            log.warning("payment.refund_refused", booking_id=key, error=str(exc))
            return "refused"
        if body is None:
            return "none"
        return {"REFUNDED": "refunded", "VOIDED": "voided"}.get(str(body["status"]), "none")
