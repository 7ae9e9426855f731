"""ECS log lines for the log shipper's tests: built by hand, or written by a real process.

``python -m tests.integration.logwriter --service payments --count N --rate R`` logs N events through
Jatra's own logging setup (structlog -> ECS JSON on stdout, as every Jatra process does), each with a
``seq`` number, at about R a second. Its stdout is the log file, as supervisord makes it.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import time
import uuid
from pathlib import Path
from typing import Any


def ecs(message: str, dataset: str = "jatra.payments", level: str = "info", **fields: Any) -> bytes:
    """One line shaped as ``ecs_logging`` writes it (top-level dotted keys, nested objects)."""
    line: dict[str, Any] = {
        "@timestamp": dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "log.level": level,
        "message": message,
        "ecs.version": "1.6.0",
        "event": {"dataset": dataset},
        "log": {"logger": f"jatra.{dataset.removeprefix('jatra.')}.worker"},
        "service": {
            "environment": "test",
            "name": f"jatra-{dataset.removeprefix('jatra.')}",
            "version": "0.1.0",
        },
        "trace": {"id": uuid.uuid4().hex},
        "span": {"id": uuid.uuid4().hex[:16]},
    }
    for key, value in fields.items():
        if "." in key:
            *parents, leaf = key.split(".")
            node = line
            for part in parents:
                node = node.setdefault(part, {})
            node[leaf] = value
        else:
            line[key] = value
    return json.dumps(line).encode() + b"\n"


def booking_events(seq: int, dataset: str = "jatra.payments") -> bytes:
    """A real-looking event of a booking's life, numbered ``seq``."""
    booking = str(uuid.UUID(int=seq))
    kinds = [
        lambda: ecs("booking.transition", dataset, booking_id=booking, from_state="PAYMENT_PENDING",
                    to_state="PAYMENT_PROCESSING", reason=None, seq=seq),
        lambda: ecs("payment.captured", dataset, booking_id=booking, status="CAPTURED", amount=779, seq=seq),
        lambda: ecs("http.request", dataset, seq=seq, **{
            "http.request.method": "POST", "http.response.status_code": 202, "http.route": "/api/v1/bookings",
            "url.path": "/api/v1/bookings", "event.duration": 20924427}),
        lambda: ecs("hold.created", dataset, hold_id=booking, journey_id=469, seats=[77401001, 77401004],
                    seat_class="SNIGDHA", segment="DA-CGP", seq=seq),
    ]  # fmt: skip
    return kinds[seq % len(kinds)]()


def write(path: Path, lines: list[bytes]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("ab") as f:
        f.writelines(lines)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--service", required=True)
    parser.add_argument("--count", type=int, required=True)
    parser.add_argument("--rate", type=float, default=500.0)
    parser.add_argument("--environment", default="test")
    args = parser.parse_args()

    import structlog  # noqa: PLC0415 - after the arguments, as a process starts

    from jatra.settings import Settings  # noqa: PLC0415
    from jatra.telemetry.logs import configure_logging  # noqa: PLC0415

    configure_logging(Settings(environment=args.environment), args.service)
    log = structlog.get_logger("jatra.logwriter")
    t0 = time.monotonic()
    for seq in range(args.count):
        booking = str(uuid.UUID(int=seq))
        if seq % 3 == 0:
            log.info("booking.transition", seq=seq, booking_id=booking, from_state="PAYMENT_PENDING",
                     to_state="CONFIRMED", reason=None)  # fmt: skip
        elif seq % 3 == 1:
            log.info("payment.captured", seq=seq, booking_id=booking, status="CAPTURED", amount=779)
        else:
            log.warning("payment.retrying", seq=seq, booking_id=booking, status=503, retry_in_s=0.5)
        ahead = seq / args.rate - (time.monotonic() - t0)
        if ahead > 0:
            time.sleep(ahead)


if __name__ == "__main__":
    main()
