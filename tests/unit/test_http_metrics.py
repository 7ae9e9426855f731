"""The HTTP metrics middleware records what Litestar's Prometheus middleware records: the same series, counts
and exemplars for the same requests, each app served once by the plugin's middleware and once by ours."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import pytest
from litestar import Litestar, get, post
from litestar.exceptions import NotFoundException
from litestar.params import FromPath
from litestar.plugins.prometheus import PrometheusMiddleware
from opentelemetry import trace
from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags
from prometheus_client import REGISTRY

from jatra.telemetry.http_metrics import HttpMetricsMiddleware, http_metrics_config

APP = "test-http-metrics"
SLOW_S = 0.02
#: what `_requests` is answered, in order (the cancelled request gets no answer)
ANSWERED = [200, 200, 404, 500, 201, 500]
PLUGINS_TRACE, OUR_TRACE = 0x0AF7651916CD43DD8448EB211C80319C, 0x4BF92F3577B34DA6A3CE929D0E0E4736

Snapshot = dict[tuple[str, frozenset[tuple[str, str]]], tuple[float, str | None]]


def _app(middleware_class: type[PrometheusMiddleware], release: asyncio.Event) -> Litestar:
    @get("/trains", opt={"service": "catalog"})
    async def trains() -> str:
        return "ok"

    @get("/trains/{number:int}", opt={"service": "catalog"})
    async def train(number: FromPath[int]) -> str:
        raise NotFoundException(f"no train {number}")

    @post("/holds", opt={"service": "seats"})
    async def hold() -> dict[str, int]:
        return {"held": 1}

    @get("/boom")
    async def boom() -> str:
        raise RuntimeError("handler failed")

    @get("/gone")
    async def gone() -> str:
        raise asyncio.CancelledError  # as when the passenger goes away during a long poll

    @get("/slow")
    async def slow() -> str:
        await asyncio.sleep(SLOW_S)
        return "late"

    @get("/held")
    async def held() -> str:
        await release.wait()
        return "released"

    config = dataclasses.replace(http_metrics_config(APP), middleware_class=middleware_class)
    handlers = [trains, train, hold, boom, gone, slow, held]
    return Litestar(handlers, middleware=[config.middleware], debug=False)


@contextmanager
def _sampled_trace(trace_id: int) -> Iterator[None]:
    context = SpanContext(
        trace_id, 0x00F067AA0BA902B7, is_remote=True, trace_flags=TraceFlags(TraceFlags.SAMPLED)
    )
    with trace.use_span(NonRecordingSpan(context)):
        yield


def _snapshot() -> Snapshot:
    """Every jatra_http sample of this app; of the durations only whether they grew (they are timings), and
    no bucket's exemplar (which bucket an observation falls in is a matter of timing too)."""
    found: Snapshot = {}
    for family in REGISTRY.collect():
        for sample in family.samples:
            if sample.labels.get("app_name") != APP:
                continue
            labels = frozenset(sample.labels.items())
            value = 0.0 if sample.name.endswith("_bucket") else sample.value
            bucket = sample.name.endswith("_bucket")
            exemplar = sample.exemplar.labels.get("trace_id") if sample.exemplar and not bucket else None
            found[(sample.name, labels)] = (value, exemplar)
    return found


def _delta(before: Snapshot, after: Snapshot, trace_id: int) -> dict[Any, Any]:
    """What the requests added to each sample; an exemplar named "sampled" when it is the run's trace."""
    delta = {}
    for key, (value, exemplar) in after.items():
        grew = value - before.get(key, (0.0, None))[0]
        delta[key] = (
            grew > 0 if key[0].endswith("_sum") else grew,
            "sampled" if exemplar == f"{trace_id:032x}" else None,
        )
    return delta


def _value(name: str, path: str, status: str = "200") -> float:
    labels = {"method": "GET", "path": path, "status_code": status, "app_name": APP, "service": "platform"}
    return REGISTRY.get_sample_value(name, labels) or 0.0


async def _requests(app: Litestar, trace_id: int, release: asyncio.Event) -> list[int]:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://jatra") as http:
        waiting = asyncio.create_task(http.get("/held"))
        for _ in range(1000):  # in progress while its handler waits
            if _value("jatra_http_requests_in_progress", "/held") == 1.0:
                break
            await asyncio.sleep(0.001)
        assert _value("jatra_http_requests_in_progress", "/held") == 1.0
        release.set()
        assert (await waiting).status_code == 200
        took = _value("jatra_http_request_duration_seconds_sum", "/slow")
        assert (await http.get("/slow")).status_code == 200
        assert _value("jatra_http_request_duration_seconds_sum", "/slow") - took >= SLOW_S
        statuses = [
            (await http.get(path)).status_code for path in ("/trains", "/trains", "/trains/7", "/boom")
        ]
        with _sampled_trace(trace_id):
            statuses.append((await http.post("/holds")).status_code)
            statuses.append((await http.get("/boom")).status_code)
        with pytest.raises(asyncio.CancelledError):
            await http.get("/gone")
    return statuses


async def test_the_same_series_counts_and_exemplars_as_litestars_middleware() -> None:
    start = _snapshot()
    theirs, mine = asyncio.Event(), asyncio.Event()
    assert await _requests(_app(PrometheusMiddleware, theirs), PLUGINS_TRACE, theirs) == ANSWERED
    plugins = _snapshot()
    assert await _requests(_app(HttpMetricsMiddleware, mine), OUR_TRACE, mine) == ANSWERED
    ours = _snapshot()

    expected = _delta(start, plugins, PLUGINS_TRACE)
    assert _delta(plugins, ours, OUR_TRACE) == expected
    # what the comparison covers, so that it cannot pass on nothing
    counted = {
        (n, dict(labels)["path"], dict(labels)["status_code"]): v for (n, labels), v in expected.items()
    }
    assert counted[("jatra_http_requests_total", "/trains", "200")] == (2.0, None)
    assert counted[("jatra_http_requests_total", "/trains/{number}", "404")] == (1.0, None)
    assert counted[("jatra_http_requests_total", "/holds", "201")] == (1.0, "sampled")
    assert counted[("jatra_http_requests_error_total", "/boom", "500")] == (2.0, "sampled")
    assert counted[("jatra_http_request_duration_seconds_count", "/boom", "500")] == (2.0, None)
    assert counted[("jatra_http_requests_total", "/gone", "200")] == (1.0, None)  # the plugin's count
    assert counted[("jatra_http_requests_in_progress", "/trains", "200")] == (0.0, None)
    assert counted[("jatra_http_request_duration_seconds_sum", "/trains", "200")] == (True, None)
    assert counted[("jatra_http_requests_in_progress", "/held", "200")] == (0.0, None)
    assert {dict(labels)["service"] for (_, labels) in expected} == {"catalog", "seats", "platform"}


def test_a_config_it_would_not_follow_is_refused() -> None:
    config = dataclasses.replace(http_metrics_config(APP), exemplars=None)

    @get("/trains")
    async def trains() -> str:
        return "ok"

    with pytest.raises(ValueError, match="http_metrics_config"):
        Litestar([trains], middleware=[config.middleware])
