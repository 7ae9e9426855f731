"""Prometheus instruments built from the catalogue, and the /metrics exposition with exemplars."""

from __future__ import annotations

import functools
import itertools
from collections.abc import Callable
from typing import Any

from litestar import Request, get
from litestar.plugins.prometheus import PrometheusController
from litestar.response import Response
from opentelemetry import trace
from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge, Histogram, disable_created_metrics
from prometheus_client.exposition import choose_encoder
from prometheus_client.openmetrics import exposition as om

from jatra.telemetry import catalogue as c
from jatra.telemetry.catalogue import MetricSpec

# No `_created` series: nothing reads them (no rule, panel or query), yet Prometheus 2 stores each as a
# series of its own, and they were a quarter of the sample lines a scrape renders (149 of an API replica's).
# The flag is read as samples are collected, so every instrument of the process follows it, Litestar's too.
disable_created_metrics()  # type: ignore[no-untyped-call]


def _labels(spec: MetricSpec) -> dict[str, Any]:
    return {"name": spec.name, "documentation": spec.help, "labelnames": spec.labels}


# One instrument per catalogue entry and process, however many modules ask for it.
_instruments: dict[str, Counter | Gauge | Histogram] = {}


def _instrument(spec: MetricSpec, kind: str, build: Callable[[], Counter | Gauge | Histogram]) -> Any:
    assert spec.kind == kind and spec.owner == "jatra", spec
    if spec.name not in _instruments:
        instrument = build()
        for values in itertools.product(*spec.known) if spec.known else ():
            instrument.labels(*values)  # every known series exists from the start, at 0
        _instruments[spec.name] = instrument
    return _instruments[spec.name]


def counter(spec: MetricSpec) -> Counter:
    # prometheus_client appends _total itself
    build = lambda: Counter(**{**_labels(spec), "name": spec.name.removesuffix("_total")})  # noqa: E731
    found: Counter = _instrument(spec, "counter", build)
    return found


def gauge(spec: MetricSpec) -> Gauge:
    found: Gauge = _instrument(spec, "gauge", lambda: Gauge(**_labels(spec)))
    return found


def histogram(spec: MetricSpec) -> Histogram:
    build = lambda: Histogram(**_labels(spec), buckets=spec.buckets or Histogram.DEFAULT_BUCKETS)  # noqa: E731
    found: Histogram = _instrument(spec, "histogram", build)
    return found


BUILD_INFO = gauge(c.BUILD_INFO)
DEPENDENCY_UP = gauge(c.DEPENDENCY_UP)
DEPENDENCY_CHECK_DURATION = histogram(c.DEPENDENCY_CHECK_DURATION)
WORKER_RUNS = counter(c.WORKER_RUNS)
WORKER_LAST_SUCCESS = gauge(c.WORKER_LAST_SUCCESS)


def trace_exemplar(_: Request[Any, Any, Any] | None = None) -> dict[str, str]:
    """The exemplar for a latency observation: the id of the trace that is current right now."""
    ctx = trace.get_current_span().get_span_context()
    if not ctx.is_valid or not ctx.trace_flags.sampled:
        return {}
    return {"trace_id": format(ctx.trace_id, "032x")}


def encoder_for(accept: str) -> tuple[Callable[[CollectorRegistry], bytes], str]:
    """prometheus_client's encoder and content type for an ``Accept`` header, made cheaper where its bytes
    cannot differ.

    Asked for OpenMetrics without an escaping (Prometheus 2.x) or with "underscores", the library escapes
    every sample's name one character at a time in Python: ~30 % of a scrape, 7 % of an API replica's busy
    samples during a rush. That scheme changes only characters other than letters, digits and underscores
    (and a leading digit), which no name here has (the catalogue's convention; a test checks every name a
    process exposes), while "allow-utf-8" passes such names through `str.replace`. So the same bytes come
    out of the cheaper scheme, under the content type the scraper negotiated.
    """
    encoder, content_type = choose_encoder(accept)
    if (
        isinstance(encoder, functools.partial)
        and encoder.func is om.generate_latest
        and encoder.keywords.get("escaping") == om.UNDERSCORES
    ):
        version = encoder.keywords.get("version", "1.0.0")
        return functools.partial(om.generate_latest, escaping=om.ALLOWUTF8, version=version), content_type
    return encoder, content_type


class MetricsController(PrometheusController):
    """Litestar's Prometheus controller, negotiating OpenMetrics (which carries the trace exemplars)."""

    path = "/metrics"
    include_in_schema = False
    # a class attribute Litestar reads; scrapes are never refused by admission control (jatra.infra.admission)
    opt = {"service": "platform", "admission": "exempt"}  # noqa: RUF012

    @get(sync_to_thread=False)
    def get(self, request: Request[Any, Any, Any]) -> Response[bytes]:
        encoder, content_type = encoder_for(request.headers.get("accept", ""))
        return Response(encoder(REGISTRY), media_type=content_type)
