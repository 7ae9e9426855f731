"""create_app(services): compose the routers of the named services with telemetry, errors and lifespans.

Services never import each other: each is a router found by dotted path in ``SERVICES`` together with the
resources it needs. ``jatra serve all`` mounts every one in one process; ``jatra serve catalog`` only one.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from litestar import Litestar, Request, Response, Router
from litestar.openapi import OpenAPIConfig
from litestar.openapi.spec import Components, SecurityScheme
from litestar.plugins.structlog import StructlogPlugin
from litestar.stores.redis import RedisStore
from opentelemetry.sdk.trace import SpanProcessor

from jatra import __version__
from jatra.errors import exception_handlers
from jatra.infra.admission import AdmissionGate, AdmissionPlugin
from jatra.infra.health import health_router, watched
from jatra.infra.openapi import StrictStructSchemaPlugin
from jatra.infra.options import options_response
from jatra.infra.redis import create_redis
from jatra.infra.requests import JatraRequest
from jatra.infra.resources import open_resources
from jatra.infra.warmup import Warmer, warm
from jatra.settings import Settings, get_settings
from jatra.telemetry import gc_pauses
from jatra.telemetry.http_metrics import http_metrics_config
from jatra.telemetry.logs import request_logging_config
from jatra.telemetry.metrics import BUILD_INFO, MetricsController
from jatra.telemetry.tracing import http_tracing_middleware, name_span_by_route, setup_tracing


@dataclass(frozen=True, slots=True)
class ServiceSpec:
    factory: str  # "module:function" building the service's Router from settings
    needs: frozenset[str]
    #: "module:function" reading what the service's requests need before the first (jatra.infra.warmup)
    warmer: str | None = None

    def load(self, settings: Settings) -> Router:
        create: Callable[[Settings], Router] = _find(self.factory)
        return create(settings)

    def warm(self) -> Warmer | None:
        return _find(self.warmer) if self.warmer else None


def _find(path: str) -> Any:
    module, attr = path.split(":")
    return getattr(importlib.import_module(module), attr)


DB_REDIS = frozenset({"db", "redis"})
SERVICES: dict[str, ServiceSpec] = {
    "auth": ServiceSpec("jatra.auth.controllers:create_router", DB_REDIS),
    "bookings": ServiceSpec("jatra.bookings.controllers:create_router", DB_REDIS),
    "catalog": ServiceSpec("jatra.catalog.controllers:create_router", DB_REDIS),
    "seats": ServiceSpec("jatra.seats.controllers:create_router", DB_REDIS, "jatra.seats.controllers:warm"),
}
#: how a passenger proves who they are: the access token from POST /auth/token
BEARER = SecurityScheme(type="http", scheme="bearer", bearer_format="JWT", description="Access token")
#: the largest body the API reads (a booking of four passengers is under 1 KiB); larger ones get 413
MAX_BODY_BYTES = 64 * 1024
#: `serve all` also holds a broker connection: the booking flow publishes, and /ready reports it
PLATFORM_NEEDS = frozenset({"db", "redis", "amqp"})


def resolve(names: Sequence[str]) -> list[str]:
    if list(names) == ["all"]:
        return list(SERVICES)
    unknown = [n for n in names if n not in SERVICES]
    if unknown:
        raise ValueError(f"unknown services {unknown}; known: all, {', '.join(SERVICES)}")
    return list(names)


def create_app(
    services: Sequence[str] = ("all",),
    settings: Settings | None = None,
    span_processors: tuple[SpanProcessor, ...] = (),
) -> Litestar:
    settings = settings or get_settings()
    names = resolve(services)
    process = "api" if list(services) == ["all"] else "-".join(names)
    provider = setup_tracing(settings, process, span_processors)
    gc_pauses.watch()
    gc_pauses.tune(settings.gc_young_threshold)
    needs = (
        PLATFORM_NEEDS
        if list(services) == ["all"]
        else frozenset().union(*(SERVICES[n].needs for n in names))
    )

    warmers = [(n, w) for n in names if (w := SERVICES[n].warm()) is not None]
    admission = AdmissionGate(
        settings.admission_new_limit,
        settings.admission_limit,
        settings.retry_after_s,
        settings.admission_standing_s,
        payment_delay_s=settings.admission_payment_delay_s,
    )

    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        async with open_resources(settings, process, needs) as resources, watched(resources):
            app.state.resources = resources
            await warm(resources, warmers)
            if settings.gc_freeze:
                gc_pauses.freeze()
            BUILD_INFO.labels(__version__, settings.environment).set(1)
            backlog = None
            if admission.payment_delay_s and "db" in needs:
                backlog = asyncio.create_task(admission.backlog.watch(resources.db()))
            try:
                yield
            finally:
                if backlog is not None:
                    backlog.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await backlog

    async def before_request(request: Request[Any, Any, Any]) -> Response[None] | None:
        # async on purpose: Litestar runs a sync hook in a worker thread, a thread hop on every request
        if request.method == "OPTIONS":
            return options_response(request)
        if provider is not None:
            name_span_by_route(request.scope)
        return None

    plugins: list[Any] = [
        StructlogPlugin(request_logging_config(settings, process)),
        StrictStructSchemaPlugin(),
        # after the structlog plugin, whose access log must see the gate's refusals
        AdmissionPlugin(admission),
    ]
    middleware: list[Any] = [http_metrics_config(process).middleware]
    if provider is not None:
        middleware.append(http_tracing_middleware(provider))  # Litestar makes it the outermost layer
    return Litestar(
        route_handlers=[health_router, MetricsController, *(SERVICES[n].load(settings) for n in names)],
        # its own client, from the URL as every other (a Unix socket's too: with_client passes a port)
        stores={
            "rate_limit": RedisStore(
                create_redis(settings), namespace="jatra:ratelimit", handle_client_shutdown=True
            )
        },
        lifespan=[lifespan],
        plugins=plugins,
        middleware=middleware,
        exception_handlers=exception_handlers(),
        before_request=before_request,
        request_class=JatraRequest,
        request_max_body_size=MAX_BODY_BYTES,
        openapi_config=OpenAPIConfig(
            title="Jatra",
            version=__version__,
            path="/docs",
            description="Railway ticketing API",
            components=Components(security_schemes={"BearerToken": BEARER}),
        ),
    )
