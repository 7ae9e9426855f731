"""The OpenTelemetry tracer provider and the client instrumentations, set up once per process."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from litestar.enums import ScopeType
from litestar.middleware.base import DefineMiddleware
from litestar.plugins.opentelemetry import OpenTelemetryConfig
from litestar.types import Scope
from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased
from opentelemetry.semconv.attributes.http_attributes import HTTP_ROUTE

from jatra import __version__
from jatra.settings import Settings
from jatra.telemetry.edge_sampling import EdgeSampledMiddleware, ReservedIdGenerator
from jatra.telemetry.server_span import method_named, span_name
from jatra.telemetry.span_scrub import ScrubbingExporter
from jatra.telemetry.trace_export import (
    CountingBatchSpanProcessor,
    CountingExporter,
    EndedSpans,
    OtlpJsonFileExporter,
)

_lock = threading.Lock()
_provider: TracerProvider | None = None


def setup_tracing(
    settings: Settings, service_name: str, extra_processors: tuple[SpanProcessor, ...] = ()
) -> TracerProvider | None:
    """Install the global tracer provider and instrument SQLAlchemy, psycopg, Redis, aio-pika and httpx.

    Spans are exported over OTLP/HTTP when ``JATRA_OTLP_ENDPOINT`` is set, and written as OTLP JSON lines
    when ``JATRA_TRACE_DIR`` is (the local stack), each scrubbed of personal data on the way
    (`jatra.telemetry.span_scrub`); ``extra_processors`` lets tests attach an in-memory exporter. Returns
    None when telemetry is off.
    """
    global _provider  # noqa: PLW0603 - one provider per process, as OpenTelemetry requires
    if not settings.telemetry_enabled:
        return None
    with _lock:
        if _provider is not None:
            for processor in extra_processors:
                _provider.add_span_processor(processor)
            return _provider
        resource = Resource.create(
            {
                "service.name": f"jatra-{service_name}",
                "service.version": __version__,
                "deployment.environment.name": settings.environment,
            }
        )
        provider = TracerProvider(
            resource=resource,
            sampler=ParentBased(TraceIdRatioBased(settings.trace_sample_ratio)),
            id_generator=ReservedIdGenerator(),  # see EdgeSampledMiddleware
        )
        provider.add_span_processor(EndedSpans())
        if settings.otlp_endpoint:
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import (  # noqa: PLC0415
                OTLPSpanExporter,
            )

            endpoint = settings.otlp_endpoint.rstrip("/") + "/v1/traces"
            exporter = CountingExporter(ScrubbingExporter(OTLPSpanExporter(endpoint=endpoint)))
            provider.add_span_processor(CountingBatchSpanProcessor(exporter))
        if settings.trace_dir:
            files = CountingExporter(
                ScrubbingExporter(OtlpJsonFileExporter(Path(settings.trace_dir), service_name))
            )
            provider.add_span_processor(CountingBatchSpanProcessor(files))
        for processor in extra_processors:
            provider.add_span_processor(processor)
        trace.set_tracer_provider(provider)
        _instrument_clients(provider)
        _provider = provider
        return provider


def _instrument_clients(provider: TracerProvider) -> None:
    from opentelemetry.instrumentation.aio_pika import AioPikaInstrumentor  # noqa: PLC0415
    from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor  # noqa: PLC0415
    from opentelemetry.instrumentation.psycopg import PsycopgInstrumentor  # noqa: PLC0415
    from opentelemetry.instrumentation.redis import RedisInstrumentor  # noqa: PLC0415
    from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor  # noqa: PLC0415

    # SQLAlchemy is patched globally so every engine created afterwards (async ones too) is traced.
    SQLAlchemyInstrumentor().instrument(tracer_provider=provider, enable_commenter=False)
    # psycopg (jatra.infra.pg): its connect is wrapped, so every pool connection made afterwards is traced;
    # statements are recorded, their parameters never (they hold passengers' data)
    PsycopgInstrumentor().instrument(tracer_provider=provider, enable_commenter=False)
    RedisInstrumentor().instrument(tracer_provider=provider)
    AioPikaInstrumentor().instrument(tracer_provider=provider)
    HTTPXClientInstrumentor().instrument(tracer_provider=provider)


def _span_details(scope: Scope) -> tuple[str, dict[str, Any]]:
    # Only where the edge cannot decide (a tracer provider not the SDK's) does OpenTelemetry's middleware
    # write the span; it runs before routing, so it is named as `server_span` names it, then by route.
    return span_name(scope), {}


def name_span_by_route(scope: Scope) -> None:
    """Rename the server span to the route template (bounded cardinality) once routing is done."""
    span = trace.get_current_span()
    template = scope.get("path_template")
    if template and span.is_recording():
        span.update_name(f"{method_named(scope)} {template}")
        span.set_attribute(HTTP_ROUTE, template)


def http_tracing_middleware(provider: TracerProvider) -> DefineMiddleware:
    """Server spans named by route, probes untraced, and the sampling decided at the edge.

    Given in the app's middleware list, not as Litestar's OpenTelemetry plugin: the plugin (2.25) always
    builds the stock middleware and ignores the config's ``middleware_class``, while a subclass of it in
    the middleware list is taken out and made the outermost layer, as the plugin's would be.
    """
    return DefineMiddleware(
        EdgeSampledMiddleware,
        config=OpenTelemetryConfig(
            tracer_provider=provider,
            exclude=["^/metrics$", "^/health$", "^/ready$"],
            scopes={ScopeType.HTTP},  # no websockets: a span would last the connection's life
            scope_span_details_extractor=_span_details,
            exclude_spans=["receive", "send"],
        ),
    )
