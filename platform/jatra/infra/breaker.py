"""Circuit breakers (purgatory) whose state is a metric: closed 0, half-open 1, open 2, per target."""

from __future__ import annotations

from typing import Any

import structlog
from purgatory import AsyncCircuitBreakerFactory

from jatra.telemetry import catalogue as c
from jatra.telemetry.metrics import counter, gauge

log = structlog.get_logger()
STATE = gauge(c.BREAKER_STATE)
TRANSITIONS = counter(c.BREAKER_TRANSITIONS)
STATES = {"closed": 0, "half-opened": 1, "opened": 2}


def _listener(name: str, event_type: str, event: Any) -> None:
    if event_type == "circuit_breaker_created":
        STATE.labels(name).set(0)
        for state in STATES:  # every transition series exists from the start, at 0
            TRANSITIONS.labels(name, state)
    elif event_type == "state_changed":
        state = str(getattr(event, "state", "closed"))
        STATE.labels(name).set(STATES.get(state, 0))
        TRANSITIONS.labels(name, state).inc()
        log.warning("breaker.state_changed", target=name, state=state)


def breakers(threshold: int, reset_s: float, exclude: list[Any] | None = None) -> AsyncCircuitBreakerFactory:
    factory = AsyncCircuitBreakerFactory(
        default_threshold=threshold, default_ttl=reset_s, exclude=exclude or []
    )
    factory.add_listener(_listener)
    return factory
