"""Real faults on the test stack reach a pager through the real Prometheus -> Alertmanager path, and resolve.

A Prometheus and an Alertmanager of this test's own scrape the test stack and evaluate the generated rules
with short ``for:`` and range windows (the committed rules keep production values), and notify a webhook
receiver here. Five faults: the payment provider down (the breaker opens), a poison payment request (dead
letters), the payment worker stopped (its target is down, and that inhibits "no consumers"), Redis stopped,
and a storm of passengers fighting over one seat.
"""

from __future__ import annotations

import asyncio
import json
import re
import shutil
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import aio_pika
import httpx
import pytest
import yaml

from jatra.infra import topology
from jatra.settings import Settings
from jatra.stack.apps import jatra_processes
from jatra.stack.base import StackContext
from jatra.stack.manager import Stack
from jatra.stack.monitoring import prometheus_config
from jatra.stack.procs import free_ports, http_ok, stop_pid, wait_until
from jatra.stack.stores import Redis
from tests.fixtures.accounts import MakePassengers
from tests.fixtures.provider import set_faults
from tests.integration.helpers import a_journey, free_seats, patiently
from tests.integration.payflow import book

pytestmark = [pytest.mark.integration, pytest.mark.slow]
ROOT = Path(__file__).resolve().parents[2]
#: the local stack's rule files (RedisDown is in infrastructure.local: the chart has a variant of its own)
RULES = ["holds", "queues", "payments", "infrastructure", "infrastructure.local"]


SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
#: a range or an offset: both scaled
RANGE = re.compile(r"(?:\[|offset )(\d+)([smhd])\]?")


def scaled(expr: str) -> str:
    shortest = min((int(n) * SECONDS[unit] for n, unit in RANGE.findall(expr)), default=1)

    def short(m: re.Match[str]) -> str:
        seconds = 30 * int(m[1]) * SECONDS[m[2]] // shortest
        return f"offset {seconds}s" if m[0].startswith("offset") else f"[{seconds}s]"

    return RANGE.sub(short, expr)


def fast(rules: str) -> str:
    """The same rules, firing at once over short windows: `for: 0s`, a rule's shortest range 30 s and its
    others in proportion (CircuitBreakerOpen: closed at no point in 5 minutes and a trial call in 15
    becomes 30 s and 90 s; a trial window as short as the other would close 15 s after the last trial)."""
    data = yaml.safe_load(rules)
    for group in data["groups"]:
        group["interval"] = "1s"
        for rule in group["rules"]:
            rule["expr"] = scaled(rule["expr"])
            if "alert" in rule:
                rule["for"] = "0s"
    return yaml.safe_dump(data)


class Pager(BaseHTTPRequestHandler):
    received: list[dict[str, Any]]

    def do_POST(self) -> None:
        self.received.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def pager() -> Iterator[tuple[str, list[dict[str, Any]]]]:
    received: list[dict[str, Any]] = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), type("P", (Pager,), {"received": received}))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}", received
    server.shutdown()


@pytest.fixture
def alerting(
    jatra_processes_running: Stack, tmp_path: Path, pager: tuple[str, list[dict[str, Any]]]
) -> Iterator[str]:
    """A Prometheus and an Alertmanager of this test's own; returns the Alertmanager's URL."""
    url, _ = pager
    rules = tmp_path / "rules"
    rules.mkdir()
    for name in RULES:
        source = (ROOT / "alerts" / "generated" / f"{name}.rules.yml").read_text()
        (rules / f"{name}.rules.yml").write_text(fast(source))
    am_port, prom_port = free_ports(2)
    ctx = jatra_processes_running.ctx
    ours = StackContext(ctx.state_dir, ctx.ports, ctx.api_replicas, ctx.environment, rules)
    config = yaml.safe_load(prometheus_config(ours))
    config["global"].update({"scrape_interval": "2s", "evaluation_interval": "1s"})
    config["alerting"]["alertmanagers"][0]["static_configs"][0]["targets"] = [f"127.0.0.1:{am_port}"]
    (tmp_path / "prometheus.yml").write_text(yaml.safe_dump(config))
    manager = yaml.safe_load((ROOT / "alerts" / "generated" / "alertmanager.yml").read_text())
    manager["route"].update({"group_wait": "1s", "group_interval": "2s", "repeat_interval": "1h"})
    for route in manager["route"]["routes"]:
        route.pop("repeat_interval", None)
    for receiver in manager["receivers"]:
        for hook in receiver["webhook_configs"]:
            hook["url"] = url + "/" + receiver["name"]
    (tmp_path / "alertmanager.yml").write_text(yaml.safe_dump(manager))
    am = subprocess.Popen(
        [
            shutil.which("prometheus-alertmanager") or "alertmanager",
            f"--config.file={tmp_path / 'alertmanager.yml'}",
            f"--storage.path={tmp_path / 'am'}",
            f"--web.listen-address=127.0.0.1:{am_port}",
            "--cluster.listen-address=",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    prom = subprocess.Popen(
        [
            shutil.which("prometheus") or "prometheus",
            f"--config.file={tmp_path / 'prometheus.yml'}",
            f"--storage.tsdb.path={tmp_path / 'tsdb'}",
            f"--web.listen-address=127.0.0.1:{prom_port}",
            "--rules.alert.resend-delay=1s",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_until(lambda: http_ok(f"http://127.0.0.1:{am_port}/-/ready"), 30, "test alertmanager")
        wait_until(lambda: http_ok(f"http://127.0.0.1:{prom_port}/-/ready"), 30, "test prometheus")
        yield f"http://127.0.0.1:{am_port}"
    finally:
        stop_pid(prom.pid)
        stop_pid(am.pid)


def notified(received: list[dict[str, Any]], alert: str, status: str) -> bool:
    return any(
        a["labels"]["alertname"] == alert and a["status"] == status
        for note in received
        for a in note["alerts"]
    )


async def until(check: Any, within_s: float, what: str) -> None:
    deadline = time.monotonic() + within_s
    while not check():
        assert time.monotonic() < deadline, f"not within {within_s}s: {what}"
        await asyncio.sleep(0.5)


async def inhibited(alertmanager: str, alert: str) -> bool:
    async with httpx.AsyncClient() as http:
        found = (await http.get(f"{alertmanager}/api/v2/alerts", params={"inhibited": "true"})).json()
    return any(a["labels"]["alertname"] == alert and a["status"]["inhibitedBy"] for a in found)


async def drain_dead_letters(settings: Settings) -> None:
    connection = await aio_pika.connect_robust(settings.amqp)
    async with connection:
        channel = await connection.channel()
        dead = await channel.get_queue(topology.dead_letter_queue(topology.PAYMENT_REQUESTS))
        while (message := await dead.get(no_ack=True, fail=False)) is not None:
            assert message.body is not None


async def test_five_faults_page_and_resolve_through_prometheus_and_alertmanager(
    jatra_processes_running: Stack,
    alerting: str,
    pager: tuple[str, list[dict[str, Any]]],
    make_passengers: MakePassengers,
    settings: Settings,
) -> None:
    _, received = pager
    stack = jatra_processes_running
    base = f"http://127.0.0.1:{settings.ports.api}"
    riders = await make_passengers(6)
    async with httpx.AsyncClient(base_url=base, timeout=30) as http:
        # 1. The payment provider goes down: payments fail, the breaker opens.
        await set_faults(settings, outage=True)
        try:
            await asyncio.gather(*(book(http, who) for who in riders[:3]))
            await until(lambda: notified(received, "CircuitBreakerOpen", "firing"), 60, "breaker page")
        finally:
            await set_faults(settings, outage=False)
        await book(http, riders[3])  # a successful call closes it again
        await until(lambda: notified(received, "CircuitBreakerOpen", "resolved"), 60, "breaker resolved")

        # 2. A payment request no worker can parse: dead letters.
        connection = await aio_pika.connect_robust(settings.amqp)
        async with connection:
            exchanges = await topology.declare(await connection.channel())
            poison = aio_pika.Message(body=b"{not json", message_id=str(uuid.uuid4()))
            await exchanges[topology.PAYMENTS].publish(poison, routing_key="payment.requested")
        await until(lambda: notified(received, "DeadLettersPresent", "firing"), 60, "dead letters ticket")
        await drain_dead_letters(settings)
        await until(lambda: notified(received, "DeadLettersPresent", "resolved"), 60, "dead letters resolved")

        # 3. The payment worker stops: its target is down, and that silences "nothing consumes payments".
        stack.down(["payments"])
        try:
            await until(lambda: notified(received, "TargetDown", "firing"), 60, "target down page")
            deadline = time.monotonic() + 60
            while not await inhibited(alerting, "QueueConsumersAbsent"):
                assert time.monotonic() < deadline, "QueueConsumersAbsent never fired (to be inhibited)"
                await asyncio.sleep(0.5)
            assert not notified(received, "QueueConsumersAbsent", "firing")  # inhibited: nobody was paged
        finally:
            stack.up([p for p in jatra_processes(stack.ctx.api_replicas) if p.name == "payments"])
        await until(lambda: notified(received, "TargetDown", "resolved"), 60, "target down resolved")

        # 4. Redis stops.
        stack.down(["redis"])
        try:
            await until(lambda: notified(received, "RedisDown", "firing"), 60, "redis down page")
        finally:
            stack.up([Redis()])
        await until(lambda: notified(received, "RedisDown", "resolved"), 60, "redis down resolved")

        # 5. Three hundred passengers want the same seat. The first takes it, once the reaper has given the
        # restarted Redis the journey's sales back (until then holds on it are refused: seats-resyncing).
        journey = await a_journey(http, "DA", "CGP", days_ahead=4)
        [seat] = await free_seats(http, journey, "DA", "CGP", 1)
        storm = await make_passengers(300)
        body = {"journey_id": journey, "from": "DA", "to": "CGP", "seats": [seat]}
        first = await patiently(lambda: http.post("/api/v1/holds", json=body, headers=riders[4].headers))
        assert first.status_code == 201, first.text
        await asyncio.gather(*(http.post("/api/v1/holds", json=body, headers=p.headers) for p in storm))
        await until(lambda: notified(received, "HoldConflictSurge", "firing"), 60, "conflict surge ticket")
        await until(
            lambda: notified(received, "HoldConflictSurge", "resolved"), 90, "conflict surge resolved"
        )

    fired = {a["labels"]["alertname"] for note in received for a in note["alerts"] if a["status"] == "firing"}
    five = {"CircuitBreakerOpen", "DeadLettersPresent", "TargetDown", "RedisDown", "HoldConflictSurge"}
    assert fired >= five
