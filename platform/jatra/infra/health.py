"""/health (liveness: the process answers) and /ready (db, redis and amqp answer within a short timeout)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

from litestar import Request, Response, Router, get
from sqlalchemy import text

from jatra.infra.admission import EXEMPT
from jatra.infra.resources import Resources
from jatra.telemetry.metrics import DEPENDENCY_CHECK_DURATION, DEPENDENCY_UP


async def _probe_db(res: Resources) -> None:
    async with res.db()() as session:
        await session.execute(text("SELECT 1"))


async def _probe_redis(res: Resources) -> None:
    await res.cache().ping()


async def _probe_amqp(res: Resources) -> None:
    connection = await res.ensure_amqp()
    # A robust connection is never "closed" by an outage (it reconnects by itself), so ask whether its
    # transport is up now.
    if connection is None or connection.is_closed or not connection.connected.is_set():
        raise ConnectionError("not connected to the broker")


def probes(res: Resources) -> dict[str, Callable[[Resources], Awaitable[None]]]:
    found: dict[str, Callable[[Resources], Awaitable[None]]] = {}
    if res.sessions is not None:
        found["postgres"] = _probe_db
    if res.redis is not None:
        found["redis"] = _probe_redis
    if res.wants_amqp:
        found["rabbitmq"] = _probe_amqp
    return found


async def check(res: Resources) -> dict[str, dict[str, Any]]:
    async def one(name: str, probe: Callable[[Resources], Awaitable[None]]) -> tuple[str, dict[str, Any]]:
        t0 = time.perf_counter()
        try:
            await asyncio.wait_for(probe(res), timeout=res.settings.dependency_timeout_s)
            result: dict[str, Any] = {"ok": True}
        except Exception as exc:
            result = {"ok": False, "error": str(exc) or type(exc).__name__}
        elapsed = time.perf_counter() - t0
        DEPENDENCY_CHECK_DURATION.labels(name).observe(elapsed)
        DEPENDENCY_UP.labels(name).set(1 if result["ok"] else 0)
        result["latency_ms"] = round(elapsed * 1000, 2)
        return name, result

    results = await asyncio.gather(*(one(n, p) for n, p in probes(res).items()))
    return dict(results)


@asynccontextmanager
async def watched(res: Resources) -> AsyncIterator[None]:
    """Probe the dependencies every few seconds in the background, so ``jatra_dependency_up`` is a live
    signal whether or not an orchestrator asks /ready (Kubernetes does; nothing does on a laptop)."""

    async def watch() -> None:
        while True:
            await check(res)
            await asyncio.sleep(res.settings.dependency_probe_interval_s)

    task = asyncio.create_task(watch())
    try:
        yield
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


@get("/health", sync_to_thread=False)
def health(request: Request[Any, Any, Any]) -> dict[str, str]:
    """Liveness: the process is up and its event loop answers."""
    return {"status": "ok", "service": request.app.state.resources.name}


@get("/ready")
async def ready(request: Request[Any, Any, Any]) -> Response[dict[str, Any]]:
    """Readiness: every dependency this process needs answered within the probe timeout."""
    res: Resources = request.app.state.resources
    checks = await check(res)
    ok = all(c["ok"] for c in checks.values())
    headers = {} if ok else {"Retry-After": str(res.settings.retry_after_s)}
    body = {"status": "ready" if ok else "not-ready", "checks": checks}
    return Response(body, status_code=200 if ok else 503, headers=headers)


#: probes are never refused by admission control: a busy pod must not look dead to its kubelet
health_router = Router(
    path="/", route_handlers=[health, ready], opt={"service": "platform", **EXEMPT}, tags=["health"]
)
