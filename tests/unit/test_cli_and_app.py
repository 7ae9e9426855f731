from __future__ import annotations

import os
import subprocess
import sys

import pytest
from litestar.utils.sync import AsyncCallable

from jatra.app import PLATFORM_NEEDS, SERVICES, create_app, resolve


def test_config_prints_every_setting_with_secrets_masked() -> None:
    env = {**os.environ, "JATRA_AMQP_URL": "amqp://jatra:hunter2@broker/"}
    result = subprocess.run(
        [sys.executable, "-m", "jatra", "config"], capture_output=True, text=True, env=env, check=True
    )
    assert "JATRA_PORT_BASE" in result.stdout and "JATRA_OTLP_ENDPOINT" in result.stdout
    assert "hunter2" not in result.stdout and "amqp://jatra:***@broker/" in result.stdout


def test_one_service_can_be_served_alone() -> None:
    app = create_app(["catalog"])
    paths = set(app.openapi_schema.paths or {})
    assert {"/api/v1/journeys", "/api/v1/stations", "/health", "/ready"} <= paths
    assert SERVICES["catalog"].needs < PLATFORM_NEEDS  # a lone catalog holds no broker connection


def test_unknown_services_are_refused() -> None:
    assert resolve(["all"]) == list(SERVICES)
    with pytest.raises(ValueError, match="unknown services"):
        resolve(["catalog", "teleport"])


def test_no_request_hook_or_dependency_hops_to_a_thread() -> None:
    """Litestar runs sync hooks, handlers and providers in a worker thread: a thread hop on every request
    (a py-spy profile found one in the before-request hook). Everything on the request path is async or
    marked sync_to_thread=False."""
    app = create_app(["all"])  # telemetry on, as in the tests' settings
    threaded = []
    for route in app.routes:
        for handler in getattr(route, "route_handlers", []):
            hooks = [handler.resolve_before_request(), handler.resolve_after_response()]
            threaded += [f"{handler}: hook {h.func}" for h in hooks if isinstance(h, AsyncCallable)]
            if handler.has_sync_callable and handler.sync_to_thread:
                threaded.append(f"{handler}: handler")
            for name, provider in handler.resolve_dependencies().items():
                if provider.has_sync_callable and provider.sync_to_thread:
                    threaded.append(f"{handler}: dependency {name}")
    assert threaded == []


#: a passenger's requests on the way to a booking, by operation id
BOOKING_PATH = ("searchJourneys", "seatMap", "createHold", "createBooking", "getBooking", "getTicketPdf")


def test_the_booking_path_resolves_its_dependencies_without_a_task_group() -> None:
    """Litestar resolves a handler's dependencies batch by batch; a batch of two or more runs in an anyio
    task group, per request (its creation, tasks and scheduling were 3-5 % of an API replica's busy
    samples). On the booking path each batch holds one dependency."""
    app = create_app(["all"])
    batches: dict[str, list[list[str]]] = {}
    for route in app.routes:
        for handler, kwargs_model in getattr(route, "route_handler_map", {}).values():
            if handler.operation_id in BOOKING_PATH:
                batches[handler.operation_id] = [
                    sorted(d.key for d in batch) for batch in kwargs_model.dependency_batches
                ]
    assert set(batches) == set(BOOKING_PATH)
    assert {op: b for op, b in batches.items() if any(len(one) > 1 for one in b)} == {}
    assert batches["getBooking"] == [["bookings_service"]]  # the positive control: it has one
