"""/metrics answers OpenMetrics with the bytes prometheus_client would, from a cheaper escaping scheme."""

from __future__ import annotations

import functools

import pytest
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.exposition import choose_encoder
from prometheus_client.openmetrics import exposition as om

from jatra.telemetry.metrics import encoder_for
from tests.fixtures.prometheus import PROMETHEUS_2_ACCEPT


def _registry() -> CollectorRegistry:
    registry = CollectorRegistry()
    hist = Histogram(
        "jatra_http_request_duration_seconds",
        'Latency, with "quotes", a \\ and a\nnewline in its help.',
        ["method", "path"],
        buckets=(0.01, 0.1, 1),
        registry=registry,
    )
    hist.labels("GET", '/a "quoted"\\path\n').observe(0.05, exemplar={"trace_id": "ab" * 16})
    hist.labels("POST", "/api/v1/bookings").observe(2)
    Counter("jatra_bookings_created", "Bookings.", ["method"], registry=registry).labels("bkash").inc()
    Gauge("jatra_queue_depth", "Depth.", registry=registry).set(3)
    return registry


@pytest.mark.parametrize(
    "accept",
    [
        PROMETHEUS_2_ACCEPT,
        "application/openmetrics-text; version=1.0.0",
        "application/openmetrics-text; version=2.0.0",
        "application/openmetrics-text; version=1.0.0; escaping=underscores",
        "application/openmetrics-text",
    ],
)
def test_the_same_bytes_and_content_type_as_the_library(accept: str) -> None:
    ours, our_type = encoder_for(accept)
    theirs, their_type = choose_encoder(accept)
    assert isinstance(ours, functools.partial) and ours.keywords["escaping"] == om.ALLOWUTF8
    assert our_type == their_type
    registry = _registry()
    assert ours(registry) == theirs(registry)


@pytest.mark.parametrize("scheme", [om.VALUES, om.DOTS, om.ALLOWUTF8])
def test_other_schemes_are_the_librarys_own(scheme: str) -> None:
    """ "values" and "dots" rewrite legacy names too (`U__` prefixes, doubled underscores): left alone."""
    accept = f"application/openmetrics-text; version=1.0.0; escaping={scheme}"
    ours, our_type = encoder_for(accept)
    theirs, their_type = choose_encoder(accept)
    assert our_type == their_type
    registry = _registry()
    assert ours(registry) == theirs(registry)


def test_the_text_format_is_the_librarys_own() -> None:
    ours, our_type = encoder_for("text/plain;version=0.0.4")
    assert (ours, our_type) == choose_encoder("text/plain;version=0.0.4")
