"""The rush report as a person reads it."""

from __future__ import annotations

from typing import Any


def render(r: dict[str, Any]) -> str:
    lines = [
        f"rush: {r['arrivals']} passengers arrived in {r['load_seconds']}s "
        f"({r['dropped_arrivals']} dropped by a saturated generator), {r['passengers_logged_in']} accounts",
        f"bookings: {r['bookings_accepted']} accepted, final {r['bookings_final']}, "
        f"{r['confirmed_per_minute']} confirmed/min; {r['abandoned_holds']} holds abandoned on purpose",
        f"seats: {r['left_without_seat']} passengers left without one in their tries, "
        f"{r['looked_again']} seat maps looked at again (a full train, or seats lost to another)",
        f"generator CPU share: {r['generator_cpu_share']} of one core "
        "(near 1.0 means the generator, not the system, was the limit)",
    ]
    if cpu := r.get("cpu_cores"):
        lines.append(
            f"CPU during the arrivals (cores of {cpu['cpus']}, machine {cpu['machine_busy']:.0%} busy): "
            + ", ".join(f"{name} {cores}" for name, cores in cpu["by_process"].items())
        )
    lines.append("latency per step (ms):   count     p50     p95     p99     max")
    for step, row in r["latency"].items():
        lines.append(
            f"  {step:20} {row['count']:>7} {row['p50_ms']:>7} {row['p95_ms']:>7} {row['p99_ms']:>7} "
            f"{row['max_ms']:>7}"
        )
    lines.append(
        "outcomes (409 conflicts are expected under contention; errors are not; unavailable = 503 with"
        " Retry-After, admission control shedding past saturation or a dependency down):"
    )
    for step, counts in r["outcomes"].items():
        lines.append(f"  {step:20} " + ", ".join(f"{k} {v}" for k, v in sorted(counts.items())))
    verdict = "all zero" if r["invariants_ok"] else "VIOLATED"
    lines.append(f"invariants ({verdict}): " + ", ".join(f"{k} {v}" for k, v in r["invariants"].items()))
    return "\n".join(lines)
