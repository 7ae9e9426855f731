"""`make bench`'s summary: per-mode medians and the on/off ratios computed from the runs' own numbers."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from bench.overhead import summarise


def run(
    confirmed: int, api_cores: float, book_p99: float, server_errors: int = 0, unavailable: int = 0
) -> dict[str, Any]:
    return {
        "options": {"rate": 12},
        "load_seconds": 60.0,
        "confirmed_per_minute": float(confirmed),
        "bookings_final": {"CONFIRMED": confirmed},
        "latency": {"book": {"p50_ms": book_p99 / 4, "p99_ms": book_p99}},
        "cpu_cores": {
            "cpus": 2,
            "machine_busy": 0.5,
            "by_process": {"api-1": api_cores, "postgres": 0.1, "osmem": 0.2},
        },
        "outcomes": {
            "book": {"ok": confirmed, "server_error": server_errors},
            "search": {"ok": confirmed, "unavailable": unavailable},
        },
        "invariants": {"seats_sold_twice": 0},
        "invariants_ok": True,
    }


def test_medians_and_ratios_come_from_the_runs(tmp_path: Path) -> None:
    runs = {
        "on-1-a": run(600, 0.30, 40.0),
        "on-1-b": run(600, 0.40, 60.0),
        "off-1-a": run(600, 0.20, 40.0),
        "off-1-b": run(600, 0.30, 40.0, server_errors=2, unavailable=3),
        "full-1": run(500, 0.50, 80.0),
    }
    for name, body in runs.items():
        (tmp_path / f"rush-telemetry-{name}.json").write_text(json.dumps(body))
    summary = summarise(tmp_path, 0.1)
    on, off, full = (summary["median"][m] for m in ("on", "off", "full"))
    # 600 bookings in 60 s: 100 ms of the window per booking; api-1 at 0.35 cores (median) = 35 ms each
    assert on["cpu_ms_per_booking"]["by_process"]["api-1"] == 35.0
    assert off["cpu_ms_per_booking"]["by_process"]["api-1"] == 25.0
    assert on["cpu_ms_per_booking"]["system"] == 45.0 and off["cpu_ms_per_booking"]["system"] == 35.0
    assert on["cpu_ms_per_booking"]["processes"] == 65.0  # the Elasticsearch stand-in counted here only
    assert off["cpu_ms_per_booking"]["machine"] == 100.0  # half of 2 cores
    assert full["cpu_ms_per_booking"]["machine"] == 120.0  # the same machine, fewer bookings
    assert summary["ratio_on_over_off"]["cpu_ms_per_booking_system"] == round(45 / 35, 3)
    assert summary["ratio_on_over_off"]["steps"]["book"]["p99_ms"] == 1.25
    assert summary["ratio_full_over_off"]["confirmed_per_minute"] == round(500 / 600, 3)
    assert summary["http_5xx"] == 5 and off["http_5xx"] == 5 and on["http_5xx"] == 0  # 500s and 503s
    assert summary["invariants_ok"] and len(summary["runs"]) == 5
    assert "0.1" in summary["modes"]["on"]
    assert summary["log_store"]["mode"] == "osmem"  # how every set before the sink was measured
    assert summarise(tmp_path, 0.1, "sink")["log_store"]["mode"] == "sink"


def test_the_generators_cpu_takes_the_machines_speed_out_of_the_ratio(tmp_path: Path) -> None:
    """Telemetry costs 10 % here, but the runs without it had a machine 30 % slower: every process, the
    generator too, took 1.3 times the CPU for the same work. The plain ratio hides the cost (x0.846); the
    system over the generator finds it (x1.1)."""

    def timed(system: float, generator: float | None) -> dict[str, Any]:
        body = run(600, system, 40.0)
        body["cpu_cores"]["by_process"] = {"api-1": system, "s3": 0.1}
        if generator is not None:
            body["cpu_cores"]["by_process"]["rush (this generator)"] = generator
        return body

    runs = {
        # 0.4763 / 0.0433 = 11.0 from the cores; from the ms a booking rounded to 0.1 it would be 47.6 / 4.3
        "on-1-a": timed(0.4763, 0.0433),
        "on-1-b": timed(0.44, 0.04),  # 11.0
        "on-1-c": timed(0.52, 0.04),  # 13.0: the median is 11.0, a mean would be 11.67
        "off-1-a": timed(0.52, 0.052),  # 10.0
        "off-1-b": timed(0.52, 0.052),
        "full-1": timed(0.5, 0.04),
        "full-2": timed(0.5, None),  # no generator measured: no figure for the mode, not one run's
    }
    for name, body in runs.items():
        (tmp_path / f"rush-telemetry-{name}.json").write_text(json.dumps(body))
    summary = summarise(tmp_path, 0.1)
    on, off, full = (summary["median"][m] for m in ("on", "off", "full"))
    by_run = {r["run"]: r["system_over_generator"] for r in summary["runs"]}
    assert by_run["rush-telemetry-on-1-a"] == 11.0 and by_run["rush-telemetry-on-1-c"] == 13.0
    assert on["system_over_generator"] == 11.0 and off["system_over_generator"] == 10.0
    assert summary["ratio_on_over_off"]["system_over_generator"] == 1.1
    assert summary["ratio_on_over_off"]["cpu_ms_per_booking_system"] == round(47.6 / 52.0, 3)
    assert by_run["rush-telemetry-full-2"] is None and full["system_over_generator"] is None
    assert summary["ratio_full_over_off"]["system_over_generator"] is None
