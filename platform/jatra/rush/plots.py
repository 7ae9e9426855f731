"""PNG charts of one rush, drawn from its JSON report (so any report, old or new, can be drawn again):
confirmed bookings and answers per second over time, each step's p50/p99 latency over time, and the CPU
each process of the stack used during the arrivals."""

from __future__ import annotations

from pathlib import Path
from typing import Any

CHARTS = ("throughput", "latency", "cpu")


def paths(report: Path) -> dict[str, Path]:
    """Where the charts of ``report`` (``x.json``) go: x.throughput.png, x.latency.png, x.cpu.png."""
    return {chart: report.with_suffix(f".{chart}.png") for chart in CHARTS}


def draw(result: dict[str, Any], report: Path) -> list[Path]:
    """Write the three charts beside ``report``; returns their paths."""
    import matplotlib  # noqa: PLC0415 - a plotting library only the rush's charts need

    matplotlib.use("Agg")  # files only, no display
    import matplotlib.pyplot as plt  # noqa: PLC0415

    series = result["series"]
    step_s = float(series["bucket_s"])
    title = _title(result)
    out = paths(report)

    fig, ax = plt.subplots(figsize=(10, 4.5))
    confirmed = series["confirmed_per_s"]
    ax.plot(_times(confirmed, step_s), confirmed, label="bookings confirmed", linewidth=2.5, color="black")
    for step, values in series["requests_per_s"].items():
        ax.plot(_times(values, step_s), values, label=f"{step} answers", linewidth=1)
    _finish(ax, f"Per second over time: {title}", "per second", result)
    fig.savefig(out["throughput"], dpi=100, bbox_inches="tight")
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(10, 4.5))
    for index, (step, p99) in enumerate(series["p99_ms"].items()):
        color = f"C{index % 10}"
        p50 = series["p50_ms"][step]
        ax.plot(_times(p99, step_s), _gaps(p99), color=color, label=f"{step} p99", linewidth=1.5)
        ax.plot(
            _times(p50, step_s), _gaps(p50), color=color, linestyle="--", label=f"{step} p50", linewidth=1
        )
    ax.set_yscale("log")
    _finish(ax, f"Latency per step over time: {title}", "ms (log)", result)
    fig.savefig(out["latency"], dpi=100, bbox_inches="tight")
    plt.close(fig)

    cpu = result["cpu_cores"]
    shares = sorted(cpu["by_process"].items(), key=lambda kv: kv[1])
    fig, ax = plt.subplots(figsize=(10, max(3.0, 0.3 * len(shares) + 1)))
    ax.barh([name for name, _ in shares], [cores for _, cores in shares], color="C0")
    ax.set_xlabel(
        f"cores during the arrivals (the machine: {cpu['cpus']} cores, {cpu['machine_busy']:.0%} busy)"
    )
    ax.set_title(f"CPU per process: {title}")
    ax.grid(axis="x", alpha=0.3)
    fig.savefig(out["cpu"], dpi=100, bbox_inches="tight")
    plt.close(fig)
    return list(out.values())


def _title(result: dict[str, Any]) -> str:
    opts = result["options"]
    return (
        f"{opts['rate']:g} arrivals/s for {opts['duration_s']:g} s, "
        f"{result['confirmed_per_minute']:g} confirmed/min"
    )


def _times(values: list[Any], step_s: float) -> list[float]:
    return [i * step_s for i in range(len(values))]


def _gaps(values: list[float | None]) -> list[float]:
    """None (no answer in that bucket) becomes NaN: a gap in the line, not a drop to zero."""
    return [float("nan") if v is None else v for v in values]


def _finish(ax: Any, title: str, ylabel: str, result: dict[str, Any]) -> None:
    ax.axvline(float(result["options"]["duration_s"]), color="grey", linestyle=":", label="arrivals end")
    ax.set_title(title)
    ax.set_xlabel("seconds since the first arrival")
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, ncol=2, loc="upper right")
