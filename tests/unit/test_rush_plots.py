"""The rush's report over time (buckets of answers, confirmed bookings and latency percentiles) and the
PNG charts drawn from it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from jatra.rush.plots import draw, paths
from jatra.rush.record import Recorder

PNG = b"\x89PNG\r\n\x1a\n"


def recorded() -> Recorder:
    """Answers at known moments: 'search' in the first and third 5 s buckets, none in the second."""
    rec = Recorder()
    for t, latency in [(0.5, 0.010), (1.0, 0.020), (4.9, 0.030), (12.0, 0.100)]:
        rec.timeline["search"].append((t, latency))
    rec.timeline["book"].append((6.0, 0.050))
    rec.finals = {"a": (7.0, "CONFIRMED"), "b": (8.0, "PAYMENT_FAILED"), "c": (13.0, "CONFIRMED")}
    return rec


def test_the_series_buckets_answers_confirmations_and_percentiles() -> None:
    series = recorded().series(bucket_s=5.0)
    assert series["requests_per_s"] == {"book": [0.0, 0.2, 0.0], "search": [0.6, 0.0, 0.2]}
    assert series["confirmed_per_s"] == [0.0, 0.2, 0.2]  # the failed payment is not counted
    assert series["p50_ms"]["search"] == [20.0, None, 100.0]  # an empty bucket is None, not 0
    assert series["p99_ms"]["search"] == [30.0, None, 100.0]
    assert series["p50_ms"]["book"] == [None, 50.0, None]


def test_the_charts_are_png_files_beside_the_report(tmp_path: Path) -> None:
    result: dict[str, Any] = {
        "options": {"rate": 12.0, "duration_s": 10.0},
        "confirmed_per_minute": 24.0,
        "series": recorded().series(bucket_s=5.0),
        "cpu_cores": {"by_process": {"api-1": 0.2, "postgres": 0.1}, "machine_busy": 0.5, "cpus": 2},
    }
    report = tmp_path / "rush.json"
    written = draw(result, report)
    assert written == list(paths(report).values())
    assert [p.name for p in written] == ["rush.throughput.png", "rush.latency.png", "rush.cpu.png"]
    for png in written:
        assert png.read_bytes().startswith(PNG) and png.stat().st_size > 5_000
