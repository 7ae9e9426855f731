"""/metrics parses as Prometheus text and as OpenMetrics (with exemplars)."""

from __future__ import annotations

import re

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from prometheus_client.openmetrics.parser import text_string_to_metric_families as parse_openmetrics
from prometheus_client.parser import text_string_to_metric_families as parse_text

from tests.integration.helpers import travel_day

pytestmark = pytest.mark.integration


async def test_metrics_parse_in_both_formats_and_cover_the_catalogue(
    client: AsyncTestClient[Litestar],
) -> None:
    await client.get(
        "/api/v1/journeys", params={"from": "DA", "to": "KLN", "date": travel_day(1).isoformat()}
    )
    await client.get("/ready")

    text = await client.get("/metrics")
    assert text.headers["content-type"].startswith("text/plain")
    families = {f.name for f in parse_text(text.text)}
    assert {"jatra_http_requests", "jatra_http_request_duration_seconds", "jatra_build_info"} <= families
    # no `_created` series: nothing reads them, and they were a quarter of a scrape (jatra.telemetry.metrics)
    assert not [s.name for f in parse_text(text.text) for s in f.samples if s.name.endswith("_created")]

    om = await client.get("/metrics", headers={"accept": "application/openmetrics-text; version=1.0.0"})
    assert om.headers["content-type"].startswith("application/openmetrics-text")
    samples = [s for f in parse_openmetrics(om.text) for s in f.samples]
    assert any(s.exemplar is not None for s in samples if s.name.startswith("jatra_http_request_duration"))
    assert not [s.name for s in samples if s.name.endswith("_created")]
    # jatra.telemetry.metrics.encoder_for answers Prometheus's "underscores" from "allow-utf-8": the same
    # bytes only while every name is letters, digits and underscores
    # (a label name may not start with "__": the two schemes write those differently)
    plain = re.compile(r"(?!__)[a-zA-Z_][a-zA-Z0-9_]*")
    odd = {n for s in samples for n in (s.name, *s.labels) if not plain.fullmatch(n)}
    assert not odd
