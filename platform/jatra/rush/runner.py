"""`jatra rush`: an open-loop load generator. Arrivals follow the clock, not the server's answers."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import os
import random
import secrets
import time
from collections.abc import Awaitable, Callable
from typing import Any
from zoneinfo import ZoneInfo

from jatra.infra.channels import MailboxChannel
from jatra.rush import invariants
from jatra.rush.cpu import CpuMeter
from jatra.rush.http import Answer, Client, TransportError
from jatra.rush.options import Options
from jatra.rush.passenger import Account, trip
from jatra.rush.record import Recorder
from jatra.settings import Settings
from jatra.stack.commands import stack_for

CLEAN_FAULTS: dict[str, object] = {
    "outage": False,
    "failure_rate": 0.0,
    "timeout_rate": 0.0,
    "decline_rate": 0.0,
    "latency_ms": 0,
    "latency_after_capture_ms": 0,
}


def _clients(opts: Options) -> list[Client]:
    return [Client(opts.base_url, local_address=f"127.0.1.{i + 1}") for i in range(opts.source_ips)]


#: a login the API answers 503 + Retry-After is tried again after that long, as the app does, this often
LOGIN_ATTEMPTS = 20


async def _patiently(call: Callable[[], Awaitable[Answer]]) -> Answer:
    """``call()`` until it is not a 503 with Retry-After (admission control refusing new trips while the
    API is busy, as a burst of logins makes it), or the attempts are spent."""
    for _ in range(LOGIN_ATTEMPTS - 1):
        answer = await call()
        if answer.status_code != 503 or answer.retry_after_s is None:
            return answer
        await asyncio.sleep(answer.retry_after_s * random.uniform(0.5, 1.5))  # noqa: S311 - jitter
    return await call()


async def _login(http: Client, mailbox: MailboxChannel) -> Account | None:
    """One passenger through the OTP flow; None if the API refused or could not be reached (the report
    shows how many logged in)."""
    phone = f"+8801{secrets.choice('3456789')}{secrets.randbelow(10**8):08d}"
    try:
        if (await _patiently(lambda: http.post("/auth/otp", json={"phone": phone}))).status_code != 202:
            return None
        code = mailbox.read(phone)[-1]["body"].split("code is ")[1][:6]
        response = await _patiently(lambda: http.post("/auth/token", json={"phone": phone, "otp": code}))
    except TransportError:
        return None
    if response.status_code != 200:
        return None
    pair = response.json()
    expires_at = time.monotonic() + pair["expires_in"]
    return Account(phone, pair["access_token"], http, pair["refresh_token"], expires_at)


async def warm_up(opts: Options, settings: Settings, clients: list[Client]) -> list[Account]:
    mailbox = MailboxChannel(settings.mailbox_dir)
    gate = asyncio.Semaphore(32)

    async def one(i: int) -> Account | None:
        async with gate:
            return await _login(clients[i % len(clients)], mailbox)

    accounts = await asyncio.gather(*(one(i) for i in range(opts.passengers)))
    return [a for a in accounts if a is not None]


def stack_processes(settings: Settings) -> dict[str, list[int]]:
    """PIDs of every server and Jatra process of the local stack (empty when it runs elsewhere)."""
    return {r.name: r.pids for r in stack_for(settings).status()}


async def _faults(opts: Options, faults: dict[str, object]) -> None:
    http = Client(opts.provider_url, timeout_s=5)
    try:
        answer = await http.put("/faults", json=faults)
    finally:
        await http.aclose()
    if not 200 <= answer.status_code < 300:
        raise RuntimeError(f"the payment provider refused its faults: {answer.status_code}")


async def run(opts: Options, settings: Settings) -> dict[str, Any]:
    clients = _clients(opts)
    rng = random.Random(opts.seed)  # noqa: S311 - load shaping, not security
    today = dt.datetime.now(ZoneInfo(settings.timezone)).date()
    try:
        accounts = await warm_up(opts, settings, clients)
        if not accounts:
            raise RuntimeError("no passenger could log in: is the stack up (`jatra up`)?")
        await _faults(opts, {**CLEAN_FAULTS, **opts.faults})
        since = dt.datetime.now(dt.UTC)
        rec = Recorder()
        meter = CpuMeter({**stack_processes(settings), "rush (this generator)": [os.getpid()]})
        meter.begin()
        cpu0, wall0 = os.times(), time.monotonic()
        tasks: set[asyncio.Task[None]] = set()
        # arrival i at start + i/rate: counted, not summed (adding 1/3 nine times can stop short of 3.0
        # and let a tenth arrival in)
        start, arrivals = time.monotonic(), round(opts.rate * opts.duration_s)
        for i in range(arrivals):
            await asyncio.sleep(max(0.0, start + i / opts.rate - time.monotonic()))
            rec.arrivals += 1
            if len(tasks) >= opts.max_in_flight:
                rec.dropped += 1
                continue
            task = asyncio.create_task(trip(rng.choice(accounts), opts, rec, rng, today))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
            task.add_done_callback(rec.count_crash)
        await asyncio.sleep(max(0.0, start + opts.duration_s - time.monotonic()))  # to the window's end
        load_s = time.monotonic() - wall0
        cpu = meter.cores(load_s)  # the arrivals window: the steady state, without the drain
        await asyncio.gather(*tasks, return_exceptions=True)
        cpu1, wall = os.times(), time.monotonic() - wall0
        found = await invariants.check(settings, since)
        result = report(
            opts, rec, accounts, load_s, wall, (cpu1.user + cpu1.system - cpu0.user - cpu0.system), found
        )
        return {**result, "cpu_cores": cpu}
    finally:
        if opts.faults:
            await _faults(opts, CLEAN_FAULTS)
        await asyncio.gather(*(c.aclose() for c in clients))


def report(
    opts: Options,
    rec: Recorder,
    accounts: list[Account],
    load_s: float,
    wall_s: float,
    cpu_s: float,
    found: dict[str, int],
) -> dict[str, Any]:
    finals: dict[str, int] = {}
    for _, status in rec.finals.values():
        finals[status] = finals.get(status, 0) + 1
    confirmed = finals.get("CONFIRMED", 0)
    return {
        "options": {
            k: v for k, v in dataclasses.asdict(opts).items() if k not in {"base_url", "provider_url"}
        },
        "passengers_logged_in": len(accounts),
        "arrivals": rec.arrivals,
        "dropped_arrivals": rec.dropped,
        "abandoned_holds": rec.abandoned,
        "looked_again": rec.looked_again,
        "left_without_seat": rec.left_without_seat,
        "load_seconds": round(load_s, 1),
        "wall_seconds": round(wall_s, 1),
        "bookings_accepted": len(rec.accepted),
        "bookings_final": finals,
        "confirmed_per_minute": round(confirmed / (load_s / 60), 1) if load_s else 0,
        "per_minute": rec.per_minute(),
        "latency": rec.latency_table(),
        "series": rec.series(),
        "outcomes": {step: dict(counts) for step, counts in sorted(rec.outcomes.items())},
        "generator_cpu_share": round(cpu_s / wall_s, 2) if wall_s else 0,
        "invariants": found,
        "invariants_ok": all(v == 0 for v in found.values()),
    }
