"""The HTTP RED metrics: Litestar's Prometheus plugin, labelled by route template and service."""

from __future__ import annotations

import time
from typing import Any, TypeAlias

from litestar import Request
from litestar.enums import ScopeType
from litestar.handlers import BaseRouteHandler
from litestar.plugins.prometheus import PrometheusConfig, PrometheusMiddleware
from litestar.status_codes import HTTP_500_INTERNAL_SERVER_ERROR
from litestar.types import ASGIApp, Message, Receive, Scope, Send

from jatra.telemetry import catalogue as c
from jatra.telemetry.metrics import trace_exemplar

Key: TypeAlias = tuple[str, str, str]  # method, route template, service


class HttpMetricsMiddleware(PrometheusMiddleware):
    """Litestar's Prometheus middleware: the same four families, labels and observations, at less cost.

    Every family is registered up front (the plugin creates the error counter at the first 5xx): /metrics
    names it, with its help and type, from the first scrape; its first series comes with the first 5xx.

    It serves :func:`http_metrics_config` only (labels from the route template and the handler's
    ``service``, exemplars from :func:`trace_exemplar`), and refuses any other config rather than ignore it.

    Per request the plugin builds a `Request` through its generic alias, two label dicts, a `functools.wraps`
    copy of `send`, and asks prometheus_client for each labelled series four times (a lock and a dict each).
    The series of a route are the same on every request, so they are looked up once per method, route,
    service and status and kept here; the labels are read from the scope. The exposition is unchanged (a
    test compares it with the plugin's own middleware), a request that ends before its answer starts (a
    cancelled long poll) included: the plugin counts it as a 200 and so does this.
    """

    def __init__(self, app: ASGIApp, config: PrometheusConfig) -> None:
        super().__init__(app, config)
        if (
            not config.group_path
            or config.exemplars is not trace_exemplar
            or list(config.labels or ()) != ["service"]
        ):
            raise ValueError("HttpMetricsMiddleware reads its labels itself: use http_metrics_config()")
        labels: dict[str, str | int | float] = dict.fromkeys(c.HTTP_LABELS, "")
        self._count = self.request_count(labels)
        self._time = self.request_time(labels)
        self._live = self.requests_in_progress(labels)
        self._errors = self.requests_error_count(labels)
        self._app_name = config.app_name
        self._excluded = config.excluded_http_methods  # tested as the plugin does: `method in` it
        self._in_progress: dict[Key, Any] = {}
        self._done: dict[tuple[Key, int], tuple[Any, Any, Any]] = {}

    def _series(self, key: Key, status: int) -> tuple[Any, Any, Any]:
        found = self._done.get((key, status))
        if found is None:
            values = (key[0], key[1], status, self._app_name, key[2])
            error = self._errors.labels(*values) if status >= HTTP_500_INTERNAL_SERVER_ERROR else None
            found = self._done[(key, status)] = (
                self._count.labels(*values),
                self._time.labels(*values),
                error,
            )
        return found

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        method = scope["method"] if scope["type"] == ScopeType.HTTP else scope["type"]
        if self._excluded and method in self._excluded:
            await self.app(scope, receive, send)
            return
        key = (method, scope["path_template"], service_of(scope["route_handler"]))
        live = self._in_progress.get(key)
        if live is None:
            live = self._in_progress[key] = self._live.labels(key[0], key[1], 200, self._app_name, key[2])
        start = time.perf_counter()
        answered = [0, 0.0]  # status, seconds to the last body message

        async def timed_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                answered[0] = message["status"]
            elif message["type"] == "http.response.body":
                answered[1] = time.perf_counter() - start
            await send(message)

        live.inc()
        try:
            await self.app(scope, receive, timed_send)
        finally:
            live.dec()
            status = int(answered[0]) or 200
            count, duration, error = self._series(key, status)
            exemplar = trace_exemplar()
            if error is not None:
                error.inc(1, exemplar)
            count.inc(1, exemplar)
            duration.observe(answered[1], exemplar)


def http_metrics_config(app_name: str) -> PrometheusConfig:
    """Litestar's Prometheus plugin, labelled by route template and service, never by raw path."""
    return PrometheusConfig(
        app_name=app_name,
        prefix=c.HTTP_PREFIX,
        group_path=True,
        exclude_unhandled_paths=True,
        buckets=list(c.HTTP_DURATION.buckets or ()),
        labels={"service": _service_of},
        exemplars=trace_exemplar,
        exclude=["^/metrics$", "^/health$", "^/ready$"],
        middleware_class=HttpMetricsMiddleware,
    )


def service_of(handler: BaseRouteHandler) -> str:
    """The ``service`` label of a route: its handler's ``service`` opt (routers set it), else "platform"."""
    return str(handler.opt.get("service", "platform"))


def _service_of(request: Request[Any, Any, Any]) -> str:
    return service_of(request.route_handler)
