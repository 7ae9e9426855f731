"""A process warms up before it serves: connections opened and what never changes read, so its first
requests do not pay for them.

A cold API replica answered its first seconds slowly: the first search and seat map of every train waited
for a pool connection to open (through PgBouncer) and for the train's layout to be read. In 20 s rushes at
50 arrivals/s, right after the replicas restarted, the first 5 s had a seat-map p99 of 58-113 ms and a
search p99 of 60-112, against 17-21 and 14-47 in the same replicas' next rush
(``bench/results/warmup/``). On the Eid rush that is every replica the autoscaler adds, at the moment it
adds them. So the app's lifespan calls :func:`warm` before the server takes a request: it opens
``CONNECTIONS`` connections in each pool (the ORM's, the one-exchange statements', Redis's) and runs each
service's own warmer (the seats service reads every train's layout).

A warm-up is best effort and bounded by ``TIMEOUT_S``: a process started while Postgres is down must
start all the same (its /ready says what is down), so a failure is logged (``warmup.failed``) and the
process serves cold. The booking path's consumers (the payment and notifications workers) warm their
statements' and Redis's pools the same way before their first message: the autoscaler adds them when
the queues grow, exactly when a cold start costs most. Logged as ``warmup.done`` with what it did and
how long it took, in the span ``process.warmup``, counted by part and outcome in
``jatra_warmup_parts_total``.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable, Sequence

import structlog
from opentelemetry import trace
from sqlalchemy import text

from jatra.infra.resources import Resources
from jatra.telemetry import catalogue as c
from jatra.telemetry.metrics import counter

log = structlog.get_logger()
tracer = trace.get_tracer(__name__)
PARTS = counter(c.WARMUP_PARTS)
#: connections opened in each pool (fewer if the pool keeps fewer): about what a replica has in use at
#: once at 50 arrivals/s
CONNECTIONS = 4
TIMEOUT_S = 10.0
#: a service's warmer: reads what its requests will need and says how many things it kept
Warmer = Callable[[Resources], Awaitable[int]]


async def warm(
    res: Resources, warmers: Sequence[tuple[str, Warmer]] = (), *, orm: bool = True
) -> dict[str, int]:
    """Open the connections and run the warmers, at most ``TIMEOUT_S``; what each part did (connections
    opened, things kept). Never raises: a failed part is logged and left cold. ``orm=False`` leaves the
    ORM's pool alone (a worker whose messages go through the one-exchange statements)."""
    parts: list[tuple[str, Warmer]] = [*_pools(res, orm=orm), *warmers]
    done: dict[str, int] = {}
    started = time.perf_counter()
    with tracer.start_as_current_span("process.warmup") as span:
        results = await asyncio.gather(
            *(asyncio.wait_for(part(res), TIMEOUT_S) for _, part in parts), return_exceptions=True
        )
        for (name, _), result in zip(parts, results, strict=True):
            if isinstance(result, BaseException):
                log.warning("warmup.failed", part=name, error=_name(result))
                PARTS.labels(name, "failed").inc()
            else:
                done[name] = result
                PARTS.labels(name, "ok").inc()
        span.set_attribute("jatra.warmup.parts", len(done))
        span.set_attribute("jatra.warmup.failed", len(parts) - len(done))
    duration_ms = round((time.perf_counter() - started) * 1000, 1)
    log.info("warmup.done", duration_ms=duration_ms, warmed=done)
    return done


def _name(exc: BaseException) -> str:
    """The exception's type, or that of the first one a task group raised."""
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    return type(exc).__name__


def _pools(res: Resources, *, orm: bool) -> list[tuple[str, Warmer]]:
    found: list[tuple[str, Warmer]] = []
    if orm and res.sessions is not None:
        found.append(("db_connections", _orm))
    if res.pg is not None:
        found.append(("statement_connections", _statements))
    if res.redis is not None:
        found.append(("redis_connections", _redis))
    return found


async def _orm(res: Resources) -> int:
    assert res.engine is not None
    n = min(CONNECTIONS, int(res.engine.pool.size()))  # type: ignore[attr-defined]  # QueuePool's
    async with contextlib.AsyncExitStack() as held:  # all held at once, so the pool opens n, not one
        for _ in range(n):
            conn = await held.enter_async_context(res.engine.connect())
            await conn.execute(text("SELECT 1"))
    return n


async def _statements(res: Resources) -> int:
    statements = res.statements()
    n = min(CONNECTIONS, statements.pool.max_size)
    await statements.warm(n)
    return n


async def _redis(res: Resources) -> int:
    redis = res.cache()

    async def ping() -> None:
        await redis.ping()

    async with asyncio.TaskGroup() as group:
        for _ in range(CONNECTIONS):
            group.create_task(ping())
    return CONNECTIONS
