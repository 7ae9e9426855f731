"""Prometheus, started by the stack, scrapes the exporters, RabbitMQ and every Jatra process."""

from __future__ import annotations

import json
import re
import time
import urllib.parse
import urllib.request
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from jatra.settings import Settings
from jatra.stack.apps import programs
from jatra.stack.manager import Stack
from jatra.stack.ports import api_replica
from jatra.stack.supervisor import program
from jatra.telemetry.catalogue import CATALOGUE, HTTP_DURATION

pytestmark = pytest.mark.integration


def prom(settings: Settings, path: str, **params: str) -> Any:
    url = f"http://127.0.0.1:{settings.ports.prometheus}{path}?{urllib.parse.urlencode(params)}"
    with urllib.request.urlopen(url, timeout=5) as response:
        return json.load(response)["data"]


def running_processes(stack: Stack) -> dict[str, str]:
    """The Jatra programs supervisord runs now (in either mode of the API), by name: their process label."""
    running = {}
    for p in programs():
        found = program(stack.ctx, p.name)
        if found is not None and found.state == "RUNNING":
            running[p.name] = p.process
    return running


def test_every_target_is_scraped(jatra_processes_running: Stack, settings: Settings) -> None:
    """Every server and exporter is scraped and up, and the Jatra processes scraped are exactly those that
    run (in either mode of the API, and whatever an earlier test started or stopped), each one up."""
    expected = {"prometheus", "alertmanager", "redis", "postgres", "node", "rabbitmq", "jatra", "supervisor"}
    running = running_processes(jatra_processes_running)
    assert {"api", "timetable", "payments"} <= set(running.values())
    wanted = {f"127.0.0.1:{settings.ports.app(name)}": process for name, process in running.items()}

    def observed() -> tuple[dict[str, list[str]], dict[str, str], set[str]]:
        health: dict[str, list[str]] = {}
        scraped: dict[str, str] = {}
        for target in prom(settings, "/api/v1/targets")["activeTargets"]:
            health.setdefault(target["labels"]["job"], []).append(target["health"])
            if target["labels"]["job"] == "jatra":
                address = target["scrapeUrl"].removeprefix("http://").removesuffix("/metrics")
                scraped[address] = target["labels"]["process"]
        built = prom(settings, "/api/v1/query", query="jatra_build_info")["result"]
        return health, scraped, {r["metric"]["process"] for r in built}

    # a process stopped just before has its series marked stale a scrape or two after it left the targets
    deadline = time.monotonic() + 40
    while True:
        health, scraped, processes = observed()
        up = set(health) >= expected and all(h == ["up"] * len(h) for h in health.values())
        converged = up and scraped == wanted and processes == set(running.values())
        if converged or time.monotonic() > deadline:
            break
        time.sleep(1)
    assert set(health) >= expected
    assert all(all(state == "up" for state in h) for h in health.values()), health
    assert scraped == wanted
    assert processes == set(running.values())
    api = prom(settings, "/api/v1/query", query='jatra_build_info{process="api"}')["result"]
    replicas = {
        f"127.0.0.1:{settings.ports.app(api_replica(n))}" for n in range(1, settings.api_replicas + 1)
    }
    assert {r["metric"]["instance"] for r in api} == replicas  # each replica, never the shared port
    workers = prom(settings, "/api/v1/query", query="jatra_worker_runs_total")["result"]
    assert any(r["metric"]["worker"] == "timetable" for r in workers)
    assert prom(settings, "/api/v1/query", query="rabbitmq_build_info")["result"]
    assert prom(settings, "/api/v1/query", query="redis_up")["result"][0]["value"][1] == "1"
    assert prom(settings, "/api/v1/query", query="pg_up")["result"][0]["value"][1] == "1"


def test_the_running_processes_serve_the_whole_catalogue(
    jatra_processes_running: Stack, settings: Settings
) -> None:
    """Every metric in the catalogue is exported by some real Jatra process, so no panel or rule can
    silently show "No data" because nothing serves its metric."""
    served: set[str] = set()
    # every Jatra process that runs, and supervisord's listener (which counts their restarts)
    running = running_processes(jatra_processes_running)
    ports = [*(settings.ports.app(name) for name in running), settings.ports.supervisor_events]
    for port in ports:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
            served |= {family.name for family in text_string_to_metric_families(response.read().decode())}
    missing = [
        name for name, spec in CATALOGUE.items()
        if (name.removesuffix("_total") if spec.kind == "counter" else name) not in served
    ]  # fmt: skip
    assert missing == []


def test_alertmanager_answers(monitoring: Stack, settings: Settings) -> None:
    url = f"http://127.0.0.1:{settings.ports.alertmanager}/api/v2/status"
    with urllib.request.urlopen(url, timeout=5) as response:
        assert json.load(response)["cluster"]["status"] in {"disabled", "ready"}


def test_the_api_replicas_share_one_port(jatra_processes_running: Stack, settings: Settings) -> None:
    """Fresh connections to the API port land on every replica (SO_REUSEPORT), as on pods behind a Service."""
    assert settings.api_replicas >= 2

    def served_by_each() -> list[float]:
        counts = []
        for n in range(1, settings.api_replicas + 1):
            url = f"http://127.0.0.1:{settings.ports.app(api_replica(n))}/metrics"
            with urllib.request.urlopen(url, timeout=5) as response:
                families = text_string_to_metric_families(response.read().decode())
                counts.append(
                    sum(
                        sample.value
                        for family in families
                        if family.name == "jatra_http_requests"
                        for sample in family.samples
                        if sample.name == "jatra_http_requests_total"
                        and sample.labels["path"] == "/api/v1/stations"
                    )
                )
        return counts

    before = served_by_each()
    for _ in range(40):  # urllib opens a new connection (a new source port) every time
        with urllib.request.urlopen(f"http://127.0.0.1:{settings.ports.api}/api/v1/stations", timeout=5) as r:
            assert r.status == 200
    after = served_by_each()
    assert sum(after) - sum(before) == 40
    assert all(a > b for a, b in zip(after, before, strict=True)), (before, after)


def test_latency_exemplars_reach_prometheus(jatra_processes_running: Stack, settings: Settings) -> None:
    """The API's latency histogram carries trace ids as exemplars, and Prometheus stores them (exemplar
    storage is on), so a latency panel can link to the very trace of a slow request."""
    start = time.time()
    for _ in range(20):
        with urllib.request.urlopen(f"http://127.0.0.1:{settings.ports.api}/api/v1/stations", timeout=5) as r:
            assert r.status == 200
    deadline = time.monotonic() + 40  # a scrape every 5 s
    while True:
        query = {"query": HTTP_DURATION.name + "_bucket", "start": str(start), "end": str(time.time() + 5)}
        found = prom(settings, "/api/v1/query_exemplars", **query)
        trace_ids = [e["labels"]["trace_id"] for series in found for e in series["exemplars"]]
        if trace_ids or time.monotonic() > deadline:
            break
        time.sleep(1)
    assert trace_ids and all(re.fullmatch(r"[0-9a-f]{32}", t) for t in trace_ids)
