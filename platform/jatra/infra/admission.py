"""Admission control: past its limit a process refuses new trips first, never the half-done ones.

Past saturation, a queue in front of a busy process only makes every request slower, until passengers
fail halfway through a trip (a hold taken, then a 503 at booking): work spent for nothing, and fewer
bookings confirmed than at saturation (bench/results/HISTORY.md, "The ceiling"). The gate counts the
requests this process is working on and refuses, with a 503 problem+json and Retry-After that cost the
process almost nothing, by how far along its trip a request is (its handler's ``opt["admission"]``):

- ``new`` (log in, search): once ``JATRA_ADMISSION_NEW_LIMIT`` are in flight;
- ``choosing`` (seat map, hold): once halfway from that to ``JATRA_ADMISSION_LIMIT`` are, so that a trip
  let in at its search is seldom refused at its next steps;
- ``continuing`` (the default: a booking, its ticket, a hold's changes): once ``JATRA_ADMISSION_LIMIT`` are;
- ``exempt`` (long polls, which spend their time waiting, not working): never counted nor refused.

New trips and choices are refused only once the count has stayed at their limit for
``JATRA_ADMISSION_STANDING_S`` (0.1 s): a burst that drains sooner is let through. New trips are also
refused while payments run behind (``jatra.infra.backlog``: the oldest booking waiting for the payment
worker is older than ``JATRA_ADMISSION_PAYMENT_DELAY_S``).

The gate runs after routing (it reads the handler's ``opt``) and inside the metrics, tracing and access
log middleware, so a refusal is counted as the route's 503, traced and logged like any answer. Each
refusal counts in ``jatra_http_requests_shed_total{phase,reason}``; while refusing, the process logs
``http.admission.shedding`` at most once per ``LOG_EVERY_S`` with the count since the last one.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Literal

import msgspec
import structlog
from litestar.config.app import AppConfig
from litestar.enums import ScopeType
from litestar.middleware import ASGIMiddleware
from litestar.plugins import InitPlugin
from litestar.types import ASGIApp, Receive, Scope, Send
from opentelemetry import trace

from jatra.errors import PROBLEM_BASE, PROBLEM_JSON
from jatra.infra.backlog import PaymentBacklog
from jatra.telemetry import catalogue as c
from jatra.telemetry.metrics import counter, gauge
from jatra.telemetry.tracing import name_span_by_route

log = structlog.get_logger("jatra.admission")

Phase = Literal["new", "choosing", "continuing", "exempt"]
Reason = Literal["in_flight", "payment_backlog"]
#: the key in a route handler's ``opt`` that names its phase (absent: "continuing")
OPT_KEY = "admission"
NEW: dict[str, Phase] = {OPT_KEY: "new"}
CHOOSING: dict[str, Phase] = {OPT_KEY: "choosing"}
EXEMPT: dict[str, Phase] = {OPT_KEY: "exempt"}
#: while refusing, one log event per process at most this often
LOG_EVERY_S = 10.0
#: new trips and choices are refused only once the count has stayed at their limit this long: a burst
#: that drains sooner is a queue doing its job (CoDel's good queue), a count that stays is overload
STANDING_S = 0.1

SHED = counter(c.ADMISSION_SHED)
IN_FLIGHT = gauge(c.ADMISSION_IN_FLIGHT)
LIMIT = gauge(c.ADMISSION_LIMIT)


class AdmissionGate(ASGIMiddleware):
    scopes = (ScopeType.HTTP,)

    def __init__(
        self,
        new_limit: int,
        limit: int,
        retry_after_s: int,
        standing_s: float = STANDING_S,
        clock: Callable[[], float] = time.monotonic,
        backlog: PaymentBacklog | None = None,
        payment_delay_s: float = 0.0,
    ) -> None:
        """``new_limit`` / ``limit``: requests in flight past which new trips / all requests are refused
        (0: never); new trips and choices only once the count has stayed there ``standing_s``. One
        instance per app, shared by every route: the count is the process's."""
        new_limit = new_limit or limit
        choosing = (new_limit + limit) // 2 if new_limit and limit else new_limit or limit
        self.limits: dict[str, int] = {"new": new_limit, "choosing": choosing, "continuing": limit}
        self.retry_after = str(retry_after_s).encode()
        self.standing_s = standing_s
        self.backlog = backlog or PaymentBacklog()
        self.payment_delay_s = payment_delay_s
        self.in_flight = 0
        self._clock = clock
        #: since when the count has been at or over each soft limit (None: under it)
        self._over_since: dict[str, float | None] = {"new": None, "choosing": None}
        self._shed_unlogged = 0
        self._log_due = 0.0
        IN_FLIGHT.set_function(lambda: self.in_flight)
        for phase, value in self.limits.items():
            LIMIT.labels(phase).set(value)

    def refuses(self, phase: Phase) -> Reason | None:
        """Why a request of ``phase`` would be refused now, or None if it is let in."""
        if phase == "new" and self.payment_delay_s and self.backlog.delay_s > self.payment_delay_s:
            return "payment_backlog"
        limit = self.limits[phase]
        if not limit or self.in_flight < limit:
            return None
        if phase == "continuing":
            return "in_flight"  # the hard cap
        since = self._over_since[phase]
        if since is None:  # first seen at or over it: it has stood there since now
            since = self._over_since[phase] = self._clock()
        return "in_flight" if self._clock() - since >= self.standing_s else None

    async def handle(self, scope: Scope, receive: Receive, send: Send, next_app: ASGIApp) -> None:
        phase: Phase = scope["route_handler"].opt.get(OPT_KEY, "continuing")
        if phase == "exempt":
            await next_app(scope, receive, send)
            return
        if reason := self.refuses(phase):
            await self._refuse(scope, send, phase, reason)
            return
        self.in_flight += 1
        try:
            await next_app(scope, receive, send)
        finally:
            self.leave()

    def leave(self) -> None:
        """A request is done: one less in flight; under a soft limit again, its clock starts over."""
        self.in_flight -= 1
        for soft in ("new", "choosing"):
            if self.in_flight < self.limits[soft]:
                self._over_since[soft] = None

    async def _refuse(self, scope: Scope, send: Send, phase: Phase, reason: Reason) -> None:
        SHED.labels(phase, reason).inc()
        span = trace.get_current_span()
        if span.is_recording():
            name_span_by_route(scope)  # the app's before_request hook, which does it otherwise, never runs
            span.set_attribute("jatra.admission.refused", phase)
            span.set_attribute("jatra.admission.reason", reason)
        self._shed_unlogged += 1
        now = time.monotonic()
        if now >= self._log_due:
            log.warning(
                "http.admission.shedding",
                phase=phase,
                reason=reason,
                refused=self._shed_unlogged,
                in_flight=self.in_flight,
                limit=self.limits[phase],
                payment_delay_s=round(self.backlog.delay_s, 1),
            )
            self._shed_unlogged = 0
            self._log_due = now + LOG_EVERY_S
        if reason == "payment_backlog":
            detail = (
                f"payments are running behind (the oldest booking has waited {self.backlog.delay_s:.0f} s); "
                "new trips are refused for now"
            )
        else:
            what = {"new": "new trips", "choosing": "new holds"}.get(phase, "requests")
            detail = (
                f"this server is busy ({self.limits[phase]} requests in flight) and refuses {what} for now"
            )
        body = msgspec.json.encode(
            {
                "type": PROBLEM_BASE + "overloaded",
                "title": "Service overloaded",
                "status": 503,
                "detail": f"{detail}; retry after {self.retry_after.decode()} s",
                "instance": scope["path"],
            }
        )
        headers = [
            (b"content-type", PROBLEM_JSON.encode()),
            (b"content-length", str(len(body)).encode()),
            (b"retry-after", self.retry_after),
        ]
        await send({"type": "http.response.start", "status": 503, "headers": headers})
        await send({"type": "http.response.body", "body": body, "more_body": False})


class AdmissionPlugin(InitPlugin):
    """Adds ``gate`` last, after the structlog plugin's access log: a refusal is logged like any answer.
    The app's lifespan runs ``gate.backlog.watch`` when the gate has a ``payment_delay_s``."""

    def __init__(self, gate: AdmissionGate) -> None:
        self.gate = gate

    def on_app_init(self, app_config: AppConfig) -> AppConfig:
        app_config.middleware.append(self.gate)
        return app_config
