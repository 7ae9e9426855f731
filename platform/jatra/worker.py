"""`jatra worker NAME`: a background loop plus /metrics, /health and /ready on the worker's own port."""

from __future__ import annotations

import asyncio
import importlib
import os
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import structlog
import uvicorn
from litestar import Litestar
from opentelemetry import trace

from jatra.infra.health import health_router, watched
from jatra.infra.http_server import exit_on_sigterm, server_config
from jatra.infra.resources import Resources, open_resources
from jatra.infra.warmup import warm
from jatra.settings import Settings
from jatra.telemetry import gc_pauses
from jatra.telemetry.logs import configure_logging
from jatra.telemetry.metrics import BUILD_INFO, WORKER_LAST_SUCCESS, WORKER_RUNS, MetricsController
from jatra.telemetry.tracing import setup_tracing

log = structlog.get_logger()

Iteration = Callable[[Resources], Awaitable[int]]
Wait = Callable[[Resources, int], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class WorkerSpec:
    iteration: str  # "module:function", one pass of the loop; returns how many items it handled
    #: what it connects to: db, redis, amqp; dblisten is a LISTEN session straight to Postgres (deployments
    #: give it JATRA_DATABASE_LISTEN_URL)
    needs: frozenset[str]
    interval: Callable[[Settings], float]
    #: database connections this worker may hold at once (no overflow). The workers' pools add up to 16,
    #: well under PgBouncer's 40 server connections, so however large a backlog they drain, the API
    #: replicas (up to 20 each) always find connections (the local stack's payment and notifications
    #: workers hold theirs straight to Postgres: jatra.stack.apps).
    db_pool: int = 2
    #: "module:function" awaited between passes instead of sleeping ``interval`` (given how many items the
    #: pass handled), for a worker that can be woken when there is work
    wait: str = ""
    #: "module:function" awaited once as the worker stops (SIGTERM), after its loop, for at most
    #: :data:`FINAL_S`: work that must not wait for a next pass that will not come (the archive seals what it
    #: has read: a pod's log directory goes with the pod)
    final: str = ""
    #: open the statements' and Redis's pools before the first pass (jatra.infra.warmup): a consumer the
    #: autoscaler adds for a backlog takes its first messages warm
    warm: bool = False
    #: the longest pause after failed passes (doubling from 1 s)
    max_backoff_s: float = 60.0

    def load(self) -> Iteration:
        fn: Iteration = _resolve(self.iteration)
        return fn

    def waiter(self) -> Wait:
        if self.wait:
            fn: Wait = _resolve(self.wait)
            return fn
        interval = self.interval

        async def pause(res: Resources, _handled: int) -> None:
            await asyncio.sleep(interval(res.settings))

        return pause


#: the longest a worker's last pass may take: inside supervisord's 20 s between SIGTERM and SIGKILL, and a
#: pod's grace period (a native sidecar is stopped after the process it follows, within the same period)
FINAL_S = 10.0


def _resolve(target: str) -> Any:
    module, attr = target.split(":")
    return getattr(importlib.import_module(module), attr)


WORKERS: dict[str, WorkerSpec] = {
    "timetable": WorkerSpec(
        "jatra.catalog.worker:roll_horizon", frozenset({"db", "redis"}), lambda s: s.timetable_interval_s
    ),
    "reaper": WorkerSpec(
        "jatra.seats.reaper:reap",
        frozenset({"db", "redis"}),
        lambda s: s.reaper_interval_s,
        # after a Redis outage, holds are refused until its first pass restores the journeys' sales
        # (jatra.inventory.resync): 5 s at most after Redis is back, not a minute of doubled pauses
        max_backoff_s=5.0,
    ),
    "outbox": WorkerSpec(
        "jatra.infra.outbox:relay_once",
        frozenset({"db", "dblisten", "amqp"}),
        lambda s: s.outbox_interval_s,
        wait="jatra.infra.outbox:wait_for_messages",
    ),
    "payments": WorkerSpec(
        "jatra.payments.worker:consume",
        frozenset({"db", "redis", "amqp"}),
        lambda s: 1.0,
        db_pool=4,
        warm=True,
    ),
    "reconciler": WorkerSpec(
        "jatra.payments.reconciler:reconcile", frozenset({"db", "redis"}), lambda s: s.reconcile_interval_s
    ),
    "notifications": WorkerSpec(
        "jatra.notifications.worker:consume",
        frozenset({"db", "redis", "amqp"}),
        lambda s: 1.0,
        db_pool=4,
        warm=True,
    ),
    "archive": WorkerSpec(  # a pass every 5 s at most: seals land within 5% of their age limit
        "jatra.archive.worker:archive_once",
        frozenset(),
        lambda s: min(5.0, max(s.archive_segment_age_s / 20, 0.1)),
        final="jatra.archive.worker:archive_last",
    ),
    "logship": WorkerSpec("jatra.logship.worker:ship", frozenset(), lambda s: s.logship_interval_s),
    "backup": WorkerSpec(
        "jatra.backup.schedule:run_schedule", frozenset(), lambda s: s.backup_check_interval_s
    ),
}


async def _loop(name: str, spec: WorkerSpec, res: Resources, *, freeze: bool = False) -> None:
    """``freeze`` (JATRA_GC_FREEZE): after the warm-up, before the first pass (jatra.telemetry.gc_pauses)."""
    iteration, wait = spec.load(), spec.waiter()
    if spec.warm:
        await warm(res, orm=False)
    if freeze:
        gc_pauses.freeze()
    tracer = trace.get_tracer("jatra.worker")
    backoff = 1.0
    while True:
        try:
            with tracer.start_as_current_span(f"worker.{name}.iteration") as span:
                handled = await iteration(res)
                span.set_attribute("jatra.worker.handled", handled)
            WORKER_RUNS.labels(name, "ok").inc()
            WORKER_LAST_SUCCESS.labels(name).set(time.time())
            backoff = 1.0
            await wait(res, handled)
        except asyncio.CancelledError:
            raise
        except Exception:
            WORKER_RUNS.labels(name, "error").inc()
            log.exception("worker.iteration.failed", worker=name, retry_in_s=backoff)
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, spec.max_backoff_s)


async def _final(name: str, spec: WorkerSpec, res: Resources) -> None:
    """The worker's last pass: bounded, and a failure is logged, not raised (the worker is stopping)."""
    last: Iteration = _resolve(spec.final)
    try:
        with trace.get_tracer("jatra.worker").start_as_current_span(f"worker.{name}.final") as span:
            handled = await asyncio.wait_for(last(res), FINAL_S)
            span.set_attribute("jatra.worker.handled", handled)
        WORKER_RUNS.labels(name, "ok").inc()
        log.info("worker.final_pass", worker=name, handled=handled)
    except Exception:  # TimeoutError among them
        WORKER_RUNS.labels(name, "error").inc()
        log.exception("worker.final_pass.failed", worker=name, limit_s=FINAL_S)


def set_up(settings: Settings, name: str) -> None:
    """What a worker process sets up before it connects to anything: its logs, its CPU priority, its
    tracing and its garbage collector."""
    configure_logging(settings, name)
    if settings.worker_nice:
        # before any thread exists (Linux applies nice per thread; new threads inherit it)
        os.nice(settings.worker_nice)
    setup_tracing(settings, name)
    gc_pauses.watch()
    gc_pauses.tune(settings.gc_young_threshold)


async def run_worker(name: str, port: int, settings: Settings) -> None:
    spec = WORKERS[name]
    from jatra import __version__  # noqa: PLC0415

    set_up(settings, name)
    async with open_resources(settings, name, spec.needs, db_pool=spec.db_pool) as res, watched(res):
        # logging_config=None: the ECS logging configured above stays; Litestar's default would replace it.
        app = Litestar(route_handlers=[health_router, MetricsController], logging_config=None)
        app.state.resources = res
        BUILD_INFO.labels(__version__, settings.environment).set(1)
        exit_on_sigterm()
        server = uvicorn.Server(
            server_config(app, settings, host=settings.api_host, port=port, lifespan="off")
        )
        loop = asyncio.create_task(_loop(name, spec, res, freeze=settings.gc_freeze))
        log.info("worker.started", worker=name, port=port)
        try:
            await server.serve()
        finally:
            loop.cancel()
            await asyncio.gather(loop, return_exceptions=True)
            if spec.final:
                await _final(name, spec, res)
            log.info("worker.stopped", worker=name)
