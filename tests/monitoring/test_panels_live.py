"""Every panel of every dashboard shows data: its PromQL, run against the real Prometheus of the test stack
after a short rush, returns series. (kube-state-metrics panels are checked with promtool series instead:
alerts/tests/autoscaling-panels.test.yml; no cluster runs here.)"""

from __future__ import annotations

import asyncio
import json
import time
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from jatra.observability import exporters
from jatra.rush.options import Options
from jatra.rush.runner import run
from jatra.settings import Settings
from jatra.stack.manager import Stack

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]
VARIABLES = {"$environment": ".*", "$service": ".*", "$process": ".*", "$namespace": ".*",
             "$__rate_interval": "1m"}  # fmt: skip
KSM = {name for name, exporter in exporters.ALL.items() if exporter == exporters.KSM}


def query(settings: Settings, expr: str) -> list[dict[str, Any]]:
    url = f"http://127.0.0.1:{settings.ports.prometheus}/api/v1/query?" + urllib.parse.urlencode(
        {"query": expr}
    )
    with urllib.request.urlopen(url, timeout=10) as response:
        body = json.load(response)
    assert body["status"] == "success", body
    result: list[dict[str, Any]] = body["data"]["result"]
    return result


def panel_queries() -> list[tuple[str, str]]:
    found = []
    for path in sorted((ROOT / "dashboards" / "generated").glob("*.json")):
        data = json.loads(path.read_text())
        for panel in data["panels"]:
            for target in panel.get("targets", []):
                expr = target["expr"]
                if any(name in expr for name in KSM):
                    continue
                for variable, value in VARIABLES.items():
                    expr = expr.replace(variable, value)
                found.append((f"{data['uid']} / {panel['title']} / {target['legendFormat']}", expr))
    return found


async def test_every_panel_has_data_after_a_short_rush(
    jatra_processes_running: Stack, settings: Settings
) -> None:
    opts = Options(
        base_url=f"http://127.0.0.1:{settings.ports.api}/api/v1",
        provider_url=settings.provider,
        rate=4,
        duration_s=5,
        passengers=12,
        source_ips=4,
        first_day=5,
    )
    result = await run(opts, settings)
    assert result["bookings_accepted"] >= 3
    queries = panel_queries()
    assert len(queries) > 80
    empty: list[str] = []
    deadline = time.monotonic() + 60  # two scrapes (5 s apart) for a rate, and a rule evaluation
    while True:
        empty = [where for where, expr in queries if not query(settings, expr)]
        if not empty or time.monotonic() > deadline:
            break
        await asyncio.sleep(5)
    assert empty == [], "\n".join(empty)
