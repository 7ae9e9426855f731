"""The sampling decision made once, at the edge of the app, so an unsampled request costs no tracing work.

At the production sampling (one new trace in ten) nine requests in ten are not traced, yet OpenTelemetry's
ASGI middleware gathers their attributes, makes and attaches a non-recording server span, wraps every
send, and then each SQL, Redis and AMQP call makes a non-recording span of its own: py-spy put all that at
~15 % of an API process's CPU. This middleware (a subclass of Litestar's OpenTelemetry middleware, so its
exclusions stay, and Litestar makes it the outermost layer) asks the provider's own sampler first:

- the trace continues a caller's (a ``traceparent``), or is new: then its trace id is drawn here, from the
  provider's id generator, and handed to the provider's next root span (`ReservedIdGenerator`), so the
  sampler, which decides on the trace id, reaches the same answer when the server span is started;
- sampled: the request runs under its server span, started under the context the edge extracted
  (`jatra.telemetry.server_span`, which replaced OpenTelemetry's ASGI middleware here), and every client
  span as before;
- not sampled: the request runs under a non-recording span of that trace (so logs carry its trace id and
  the outbox passes its unsampled ``traceparent`` on to the workers, which then do not sample either), with
  the client instrumentations told to do nothing (OpenTelemetry's suppress-instrumentation flag).

Nothing that would have been recorded is lost: every span of an unsampled trace is dropped by the
exporter anyway. With sampling at 1.0 (the local stack, the tests) every request takes the first path.

A request that carries none of the W3C propagators' headers (``traceparent``, ``tracestate``,
``baggage``: a passenger's request, nearly every one) has nothing to extract, and the propagator is not
asked: it would read every header through the ASGI getter, decoding and lower-casing each, twice (2-4 µs
of the ~7 µs the unsampled decision took, timed: bench/results/request-telemetry/). With any other
propagator configured every request is extracted, as before.
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Iterator

from litestar.plugins.opentelemetry import OpenTelemetryConfig
from litestar.plugins.opentelemetry.middleware import OpenTelemetryInstrumentationMiddleware
from litestar.types import ASGIApp, Receive, Scope, Send
from opentelemetry import context, propagate, trace
from opentelemetry.baggage.propagation import W3CBaggagePropagator
from opentelemetry.context import _SUPPRESS_INSTRUMENTATION_KEY, Context
from opentelemetry.instrumentation.asgi import asgi_getter
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.id_generator import RandomIdGenerator
from opentelemetry.sdk.trace.sampling import Decision
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from jatra import __version__
from jatra.telemetry.server_span import traced

_fields: tuple[object, frozenset[bytes] | None] = (None, None)


def _looked_for(textmap: object) -> frozenset[bytes] | None:
    """The headers whose absence means extracting gives an empty context: those of the W3C trace context,
    alone or followed by W3C baggage (OpenTelemetry's default). For any other propagator, None: its
    ``fields`` name the headers it writes, not always all it reads (B3's single header, Jaeger's
    ``uberctx-*``), so every request is extracted."""
    parts = list(getattr(textmap, "_propagators", [textmap]))  # a composite's (its only accessor)
    kinds = [type(p) for p in parts]
    if kinds not in ([TraceContextTextMapPropagator], [TraceContextTextMapPropagator, W3CBaggagePropagator]):
        return None
    return frozenset(name.lower().encode("latin-1") for p in parts for name in p.fields)


def _propagated(scope: Scope) -> bool:
    """Whether the request may carry a caller's context: one of the propagator's headers is there, or the
    propagator is not one whose headers are known (`_looked_for`; worked out again when the global
    propagator is replaced)."""
    global _fields  # noqa: PLW0603 - one entry, swapped whole
    textmap = propagate.get_global_textmap()
    cached = _fields
    if cached[0] is not textmap:
        cached = _fields = (textmap, _looked_for(textmap))
    names = cached[1]
    return names is None or any(name in names for name, _ in scope.get("headers", ()))


_reserved: contextvars.ContextVar[int] = contextvars.ContextVar("jatra_reserved_trace_id", default=0)


class ReservedIdGenerator(RandomIdGenerator):
    """Random ids, except that the next root span of a request takes the trace id drawn at the edge."""

    def generate_trace_id(self) -> int:
        reserved = _reserved.get()
        if reserved:
            _reserved.set(0)  # once: a later root span in the same request gets a trace of its own
            return reserved
        return super().generate_trace_id()


class EdgeSampledMiddleware(OpenTelemetryInstrumentationMiddleware):
    def __init__(self, app: ASGIApp, config: OpenTelemetryConfig) -> None:
        super().__init__(app, config)
        provider = config.tracer_provider
        # without the SDK's provider and its reserving id generator, every request goes the usual way
        self.provider = provider if isinstance(provider, TracerProvider) else None
        ids = provider.id_generator if isinstance(provider, TracerProvider) else None
        self.ids = ids if isinstance(ids, ReservedIdGenerator) else None
        self.tracer = self.provider.get_tracer("jatra.http", __version__) if self.provider else None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        provider, ids, tracer = self.provider, self.ids, self.tracer
        if provider is None or ids is None or tracer is None:
            await self.open_telemetry_middleware(scope, receive, send)  # type: ignore[arg-type]
            return
        # Context(): what extracting from none of the W3C propagators' headers gives
        parent_context = (
            propagate.extract(scope, getter=asgi_getter)  # type: ignore[misc]
            if _propagated(scope)
            else Context()
        )
        parent = trace.get_current_span(parent_context).get_span_context()
        trace_id = parent.trace_id if parent.is_valid else ids.generate_trace_id()
        decision = provider.sampler.should_sample(parent_context, trace_id, "edge").decision
        if decision is not Decision.DROP:
            if not parent.is_valid:
                _reserved.set(trace_id)
            try:
                await traced(tracer, self.app, scope, receive, send, parent_context)
            finally:
                _reserved.set(0)
            return
        unsampled = trace.NonRecordingSpan(
            trace.SpanContext(
                trace_id=trace_id,
                span_id=ids.generate_span_id(),
                is_remote=False,
                trace_flags=trace.TraceFlags(trace.TraceFlags.DEFAULT),
                trace_state=parent.trace_state,
            )
        )
        in_trace = trace.set_span_in_context(unsampled, parent_context)
        quiet = context.set_value(_SUPPRESS_INSTRUMENTATION_KEY, True, in_trace)
        token = context.attach(quiet)
        try:
            await self.app(scope, receive, send)
        finally:
            context.detach(token)


@contextlib.contextmanager
def quiet_unless_sampled() -> Iterator[None]:
    """The same for a worker's message: its handling runs under the consumer span that continues the
    message's trace, and when that trace is not sampled (nine in ten at 0.1, decided at the API's edge),
    the client instrumentations are told to do nothing while it is handled. The trace id stays current, so
    logs still carry it and the outbox passes the unsampled ``traceparent`` on."""
    current = trace.get_current_span().get_span_context()
    if not current.is_valid or current.trace_flags.sampled:
        yield
        return
    token = context.attach(context.set_value(_SUPPRESS_INSTRUMENTATION_KEY, True))
    try:
        yield
    finally:
        context.detach(token)
