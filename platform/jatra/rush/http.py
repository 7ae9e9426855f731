"""The load generator's HTTP client: aiohttp, read whole, decoded with msgspec.

The generator must measure the system, not itself. httpx cost about 1.7-1.9 ms of CPU per request here
against 0.11-0.16 ms for aiohttp (3,000 GETs of /health, same machine, same server), which made the
generator one of the largest consumers of the machine during a rush. See bench/results/rush-client/.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

import aiohttp
import msgspec

_decode = msgspec.json.Decoder().decode
_encode = msgspec.json.Encoder().encode


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


class Client:
    """One connection pool bound to a source address (the API rate-limits per client address)."""

    def __init__(self, base_url: str, *, local_address: str | None = None, timeout_s: float = 30) -> None:
        self.base_url = base_url.rstrip("/")
        self._local = (local_address, 0) if local_address else None
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)
        self._session: aiohttp.ClientSession | None = None

    def _open(self) -> aiohttp.ClientSession:
        if self._session is None:  # created inside the running loop, as aiohttp requires
            connector = aiohttp.TCPConnector(limit=256, local_addr=self._local, ttl_dns_cache=None)
            self._session = aiohttp.ClientSession(connector=connector, timeout=self._timeout)
        return self._session

    async def request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> Answer:
        sent = dict(headers or {})
        data = None
        if json is not None:
            data, sent["Content-Type"] = _encode(json), "application/json"
        query = {k: str(v) for k, v in params.items()} if params else None
        try:
            async with self._open().request(
                method, self.base_url + path, data=data, params=query, headers=sent
            ) as response:
                retry_after = response.headers.get("Retry-After", "")
                wait = float(retry_after) if retry_after.isdigit() else None
                return Answer(response.status, await response.read(), wait)
        except TimeoutError as exc:
            raise TransportError("timeout") from exc
        except (aiohttp.ClientError, OSError) as exc:
            raise TransportError("transport_error") from exc

    async def get(self, path: str, **kwargs: Any) -> Answer:
        return await self.request("GET", path, **kwargs)

    async def post(self, path: str, **kwargs: Any) -> Answer:
        return await self.request("POST", path, **kwargs)

    async def put(self, path: str, **kwargs: Any) -> Answer:
        return await self.request("PUT", path, **kwargs)

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            await asyncio.sleep(0)  # let the connector's transports close
