"""`jatra demo`: a short burst of journey searches against the running stack, then where everything is."""

from __future__ import annotations

import asyncio
import datetime as dt
import random
import statistics
import time
import uuid
from collections import Counter
from zoneinfo import ZoneInfo

import httpx

from jatra.infra.channels import MailboxChannel
from jatra.settings import Settings

DEMO_PHONE = "+8801700000001"

POPULAR = [
    ("DA", "CGP"),
    ("CGP", "DA"),
    ("DA", "SYT"),
    ("DA", "RJS"),
    ("DA", "KLN"),
    ("DA", "CXB"),
    ("BHB", "SYT"),
    ("DA", "PCG"),
    ("RJS", "KLN"),
    ("DA", "MYN"),
]


async def burst(settings: Settings, requests: int = 300, concurrency: int = 20) -> str:
    base = f"http://127.0.0.1:{settings.ports.api}"
    today = dt.datetime.now(ZoneInfo(settings.timezone)).date()
    rng = random.Random(7)  # noqa: S311 - load shaping, not security
    latencies: list[float] = []
    statuses: Counter[int] = Counter()
    queue: asyncio.Queue[tuple[str, str, dt.date]] = asyncio.Queue()
    for _ in range(requests):
        origin, destination = rng.choice(POPULAR)
        queue.put_nowait((origin, destination, today + dt.timedelta(days=rng.randint(1, 7))))

    async def client(http: httpx.AsyncClient) -> None:
        while not queue.empty():
            origin, destination, day = queue.get_nowait()
            t0 = time.perf_counter()
            response = await http.get(
                "/api/v1/journeys", params={"from": origin, "to": destination, "date": day.isoformat()}
            )
            latencies.append(time.perf_counter() - t0)
            statuses[response.status_code] += 1

    t0 = time.perf_counter()
    async with httpx.AsyncClient(base_url=base, timeout=10) as http:
        await asyncio.gather(*(client(http) for _ in range(concurrency)))
    elapsed = time.perf_counter() - t0
    q = statistics.quantiles(latencies, n=100, method="inclusive")
    return (
        f"search burst: {requests} requests in {elapsed:.1f}s ({requests / elapsed:.0f}/s), "
        f"status {dict(statuses)}, p50 {q[49] * 1000:.1f} ms, p99 {q[98] * 1000:.1f} ms"
    )


async def passenger_walkthrough(settings: Settings) -> str:
    """Log in by OTP (read from the dev mailbox), open a seat map, hold two seats, book and pay for them."""
    base = f"http://127.0.0.1:{settings.ports.api}/api/v1"
    day = dt.datetime.now(ZoneInfo(settings.timezone)).date() + dt.timedelta(days=3)
    lines = []
    async with httpx.AsyncClient(base_url=base, timeout=10) as http:
        (await http.post("/auth/otp", json={"phone": DEMO_PHONE})).raise_for_status()
        body = MailboxChannel(settings.mailbox_dir).read(DEMO_PHONE)[-1]["body"]
        code = body.split("code is ")[1][:6]
        tokens = (await http.post("/auth/token", json={"phone": DEMO_PHONE, "otp": code})).json()
        auth = {"Authorization": f"Bearer {tokens['access_token']}"}
        lines.append(f"login: OTP {code} read from {settings.mailbox_dir}, valid {tokens['expires_in']}s")
        search = await http.get("/journeys", params={"from": "DA", "to": "SYT", "date": day.isoformat()})
        journey = search.json()["journeys"][0]
        seat_map = (
            await http.get(f"/journeys/{journey['journey_id']}/seats", params={"from": "DA", "to": "SYT"})
        ).json()
        free = [s for s in seat_map["seats"] if s["status"] == "free" and s["class"] == "SNIGDHA"][:2]
        hold = await http.post(
            "/holds",
            json={
                "journey_id": journey["journey_id"],
                "from": "DA",
                "to": "SYT",
                "seats": [s["seat_id"] for s in free],
            },
            headers=auth,
        )
        held = hold.json()
        seats = ", ".join(f"{s['coach']}-{s['number']}" for s in held["seats"])
        lines.append(
            f"hold: {journey['train']['name']} {day} DA->SYT seats {seats} ({held['total_fare']} BDT), "
            f"HTTP {hold.status_code}, expires {held['expires_at']}"
        )
        booking = await http.post(
            "/bookings",
            json={
                "hold_id": held["hold_id"],
                "payment_method": "bkash",
                "passengers": [{"name": "Demo Passenger", "age": 30, "gender": "female"}]
                * len(held["seats"]),
            },
            headers={**auth, "Idempotency-Key": str(uuid.uuid4())},
        )
        location = booking.headers["location"].removeprefix("/api/v1")
        lines.append(f"booking: HTTP {booking.status_code} {booking.json()['status']}, polling {location}")
        status: dict[str, object] = {}
        for _ in range(100):
            status = (await http.get(location, headers=auth)).json()
            if status["status"] not in ("PAYMENT_PENDING", "PAYMENT_PROCESSING"):
                break
            await asyncio.sleep(0.1)
        lines.append(
            f"booking: {status['status']}, ticket {status.get('ticket_number')} "
            f"(PDF at {base}{location}/ticket.pdf; SMS in {settings.mailbox_dir})"
        )
        lines.append(f"trace: `jatra trace {status.get('booking_id')}` draws this booking's whole trace")
    return "\n".join(lines)


def _last_seal(settings: Settings) -> float:
    """When the archive worker last sealed a segment (its /metrics), 0 if never or unreachable."""
    from prometheus_client.parser import text_string_to_metric_families  # noqa: PLC0415

    try:
        text = httpx.get(f"http://127.0.0.1:{settings.ports.app('archive')}/metrics", timeout=5).text
    except httpx.HTTPError:
        return 0.0
    for family in text_string_to_metric_families(text):
        if family.name == "jatra_archive_last_seal_timestamp_seconds":
            return max((s.value for s in family.samples), default=0.0)
    return 0.0


def auditor_view(settings: Settings, since: float) -> str:
    """Wait (bounded) for the archive worker to seal what the demo produced, then say where the archive and
    the backups are; `make demo` runs `jatra audit verify` and `jatra backup list` after this."""
    wait = settings.archive_segment_age_s * 2 + 15
    deadline = time.monotonic() + wait
    while _last_seal(settings) < since and time.monotonic() < deadline:
        time.sleep(1)
    sealed = _last_seal(settings)
    archive = f"s3://{settings.archive_bucket} at {settings.s3}"
    lines = [
        f"audit archive: {archive} (Object Lock COMPLIANCE, {settings.archive_retention_days} days)",
        "  segments seal every "
        f"{settings.archive_segment_age_s:.0f} s or {settings.archive_segment_bytes // 1024 // 1024} MiB; "
        + (
            f"the last one at {dt.datetime.fromtimestamp(sealed, dt.UTC):%H:%M:%S} UTC"
            if sealed >= since
            else f"none sealed since the demo started (waited {wait:.0f} s)"
        ),
        "  check it: `jatra audit verify`; find a booking: `jatra audit search --booking-id ID`",
        "  the public key auditors pin: `jatra audit key`",
        f"backups: s3://{settings.backup_bucket}{settings.backup_repo_path} at {settings.s3} (pgBackRest, "
        "WAL archived continuously); `jatra backup list`, drill: `jatra restore --drill`",
    ]
    return "\n".join(lines)
