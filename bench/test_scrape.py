"""What one Prometheus scrape costs a process (`make bench-scrape`, pytest-benchmark), for every instrument in
the metric catalogue on one registry:

- the text exposition with and without the `_created` series that prometheus_client adds to each counter and
  histogram. Jatra turns them off (`jatra.telemetry.metrics`): nothing reads them;
- OpenMetrics (what Prometheus asks for, and what carries exemplars) as prometheus_client encodes it for
  Prometheus 2's Accept header, against `jatra.telemetry.metrics.encoder_for`, which gets the same bytes
  from a cheaper escaping scheme.

Each Jatra process answers a scrape every 5 s. `make test` runs it once, untimed, so it cannot rot."""

from __future__ import annotations

import itertools
from collections.abc import Iterator

import pytest
from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    enable_created_metrics,
    generate_latest,
)
from prometheus_client import metrics as prometheus_metrics
from prometheus_client.exposition import choose_encoder
from pytest_benchmark.fixture import BenchmarkFixture
from tests.fixtures.prometheus import PROMETHEUS_2_ACCEPT

from jatra.telemetry import catalogue as c
from jatra.telemetry.metrics import encoder_for

#: the API's routes and answers a rush leaves in its HTTP histogram (method, path, status)
ROUTES = [
    ("GET", "/api/v1/journeys", "200"),
    ("GET", "/api/v1/journeys/{journey_id:int}/seats", "200"),
    ("POST", "/api/v1/holds", "201"),
    ("POST", "/api/v1/holds", "409"),
    ("POST", "/api/v1/bookings", "202"),
    ("POST", "/api/v1/bookings", "200"),
    ("GET", "/api/v1/bookings/{booking_id:uuid}", "200"),
    ("GET", "/api/v1/bookings/{booking_id:uuid}/ticket.pdf", "200"),
    ("POST", "/api/v1/auth/otp", "202"),
    ("POST", "/api/v1/auth/token", "200"),
    ("POST", "/api/v1/auth/refresh", "200"),
]


def _series(spec: c.MetricSpec) -> list[tuple[str, ...]]:
    if spec.known:
        return list(itertools.product(*spec.known))
    return [tuple("x" for _ in spec.labels)]


def catalogue_registry() -> CollectorRegistry:
    """Every catalogue instrument on a registry of its own, each of its series touched once."""
    registry = CollectorRegistry()
    for spec in c.CATALOGUE.values():
        if spec.owner != "jatra":
            continue  # Litestar's HTTP instruments: below, with the routes of a rush
        kw = {"name": spec.name, "documentation": spec.help, "labelnames": spec.labels, "registry": registry}
        if spec.kind == "counter":
            counter = Counter(**{**kw, "name": spec.name.removesuffix("_total")})
            for values in _series(spec):
                (counter.labels(*values) if values else counter).inc()
        elif spec.kind == "gauge":
            gauge = Gauge(**kw)
            for values in _series(spec):
                (gauge.labels(*values) if values else gauge).set(1)
        else:
            histogram = Histogram(**kw, buckets=spec.buckets or Histogram.DEFAULT_BUCKETS)
            for values in _series(spec):
                (histogram.labels(*values) if values else histogram).observe(0.01)
    http = Histogram(
        "jatra_http_request_duration_seconds",
        c.HTTP_DURATION.help,
        ["app_name", "method", "path", "status_code", "service"],
        buckets=c.HTTP_DURATION.buckets or Histogram.DEFAULT_BUCKETS,
        registry=registry,
    )
    for method, path, status in ROUTES:
        http.labels("api", method, path, status, "x").observe(0.01)
    return registry


def created_lines(text: bytes) -> int:
    """Sample lines of `_created` series (a family such as `jatra_bookings_created_total` is not one)."""
    return sum(1 for line in text.splitlines() if line.split(b"{")[0].split(b" ")[0].endswith(b"_created"))


@pytest.fixture
def created_series() -> Iterator[None]:
    was = prometheus_metrics._use_created  # jatra.telemetry.metrics turned it off at import
    enable_created_metrics()
    yield
    if not was:
        disable_created_metrics()


def test_a_scrape_with_created_series(benchmark: BenchmarkFixture, created_series: None) -> None:
    text = benchmark(generate_latest, catalogue_registry())
    assert created_lines(text) > 0


def test_a_scrape_without_them(benchmark: BenchmarkFixture) -> None:
    disable_created_metrics()
    text = benchmark(generate_latest, catalogue_registry())
    assert created_lines(text) == 0


def test_openmetrics_as_the_library_escapes_it(benchmark: BenchmarkFixture) -> None:
    encode, _ = choose_encoder(PROMETHEUS_2_ACCEPT)
    registry = catalogue_registry()
    assert benchmark(encode, registry) == encoder_for(PROMETHEUS_2_ACCEPT)[0](registry)


def test_openmetrics_as_jatra_answers_it(benchmark: BenchmarkFixture) -> None:
    encode, _ = encoder_for(PROMETHEUS_2_ACCEPT)
    registry = catalogue_registry()
    assert benchmark(encode, registry) == choose_encoder(PROMETHEUS_2_ACCEPT)[0](registry)
