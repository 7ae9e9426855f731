"""E-tickets: a real PDF for the owner of a confirmed booking, and QR codes verifiable offline."""

from __future__ import annotations

import asyncio
import json
import subprocess
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from litestar import Litestar
from litestar.testing import AsyncTestClient
from prometheus_client import REGISTRY
from redis.asyncio import Redis

from jatra.settings import Settings
from jatra.stack.manager import Stack
from jatra.tickets import cache, signing
from tests.fixtures.accounts import MakePassengers
from tests.fixtures.provider import set_faults
from tests.integration.helpers import eventually, orm_statements
from tests.integration.payflow import book, final_state, worker_metric

pytestmark = pytest.mark.integration
Client = AsyncTestClient[Litestar]


async def scanned_qr(pdf: bytes, tmp_path: Path) -> str:
    """The QR printed on a ticket PDF, as a checker's phone reads it: rasterised, then scanned (zbar)."""
    (tmp_path / "ticket.pdf").write_bytes(pdf)
    render = ["pdftoppm", "-png", "-r", "200", str(tmp_path / "ticket.pdf"), str(tmp_path / "page")]
    await asyncio.to_thread(subprocess.run, render, check=True)
    # QR only, as a checker's app scans: zbar also tries 1-D symbologies, which a page of text can fool
    zbar = ["zbarimg", "-q", "--raw", "-Sdisable", "-Sqrcode.enable", str(tmp_path / "page-1.png")]
    scanned = await asyncio.to_thread(subprocess.run, zbar, capture_output=True, text=True, check=True)
    return scanned.stdout.strip()


async def test_ticket_pdf_and_qr_verification(
    jatra_processes_running: Stack,
    client: Client,
    make_passengers: MakePassengers,
    settings: Settings,
    tmp_path: Path,
) -> None:
    await set_faults(settings, outage=False, latency_after_capture_ms=0, decline_rate=0.0)
    owner, other = await make_passengers(2)
    booked = await book(client, owner, seats=2)
    done = await final_state(client, owner, booked["booking_id"])
    assert done["status"] == "CONFIRMED"
    url = f"/api/v1/bookings/{booked['booking_id']}/ticket.pdf"

    pdf = await client.get(url, headers=owner.headers)
    assert pdf.status_code == 200 and pdf.headers["content-type"] == "application/pdf"
    assert pdf.content.startswith(b"%PDF-") and done["ticket_number"].encode() in pdf.content
    assert (await client.get(url, headers=other.headers)).status_code == 404

    qr = await scanned_qr(pdf.content, tmp_path)  # what is printed on the ticket, not what the code builds
    response = await client.post("/api/v1/tickets/verify", json={"qr": qr})
    assert response.status_code == 200, (response.text, qr)  # the text read, should this ever fail again
    ok = response.json()
    assert ok["valid"] is True and ok["ticket"]["ticket_number"] == done["ticket_number"]

    # Offline: only the published public key, no call to Jatra.
    pem = (await client.get("/api/v1/tickets/public-key")).text
    public = serialization.load_pem_public_key(pem.encode())
    assert isinstance(public, Ed25519PublicKey)
    assert signing.verify(public, qr).valid

    body, signature = signing.unpack(qr)
    payload = json.loads(body)
    payload["seat_labels"] = ["KA-1"]  # a passenger edits the seat and keeps the signature
    altered = signing.pack(json.dumps(payload, sort_keys=True, separators=(",", ":")).encode(), signature)
    forged = signing.sign(Ed25519PrivateKey.generate(), payload)  # signed, but not by Jatra
    for bad in (altered, forged, "JT2:ABC", "hello"):
        verdict = (await client.post("/api/v1/tickets/verify", json={"qr": bad})).json()
        assert verdict["valid"] is False and verdict["ticket"] is None


async def test_no_ticket_before_confirmation(
    jatra_processes_running: Stack, client: Client, make_passengers: MakePassengers, settings: Settings
) -> None:
    [owner] = await make_passengers(1)
    await set_faults(settings, latency_ms=3000)  # keep the payment in flight while we ask
    try:
        booked = await book(client, owner)
        response = await client.get(
            f"/api/v1/bookings/{booked['booking_id']}/ticket.pdf", headers=owner.headers
        )
        assert response.status_code == 409 and response.json()["type"].endswith("booking-state")
    finally:
        await set_faults(settings, latency_ms=0)


async def test_the_qr_printed_on_the_pdf_scans_and_verifies(
    jatra_processes_running: Stack,
    client: Client,
    make_passengers: MakePassengers,
    settings: Settings,
    tmp_path: Path,
) -> None:
    """Rasterise the PDF (poppler) and scan it (zbar), as a checker's phone would, then verify offline."""
    await set_faults(settings, outage=False, latency_after_capture_ms=0, decline_rate=0.0, latency_ms=0)
    [owner] = await make_passengers(1)
    booked = await book(client, owner)
    assert (await final_state(client, owner, booked["booking_id"]))["status"] == "CONFIRMED"
    pdf = (
        await client.get(f"/api/v1/bookings/{booked['booking_id']}/ticket.pdf", headers=owner.headers)
    ).content
    scanned = await scanned_qr(pdf, tmp_path)
    pem = (await client.get("/api/v1/tickets/public-key")).text
    public = serialization.load_pem_public_key(pem.encode())
    assert isinstance(public, Ed25519PublicKey)
    verdict = signing.verify(public, scanned)
    assert (
        verdict.valid and verdict.ticket is not None and verdict.ticket["booking_id"] == booked["booking_id"]
    )


async def test_the_worker_renders_the_ticket_before_the_passenger_asks(
    jatra_processes_running: Stack,
    client: Client,
    make_passengers: MakePassengers,
    settings: Settings,
    redis: Redis,
) -> None:
    """The download is a cache read: the API's event loop does no PDF work for a fresh ticket, and no
    database work either (the cached entry names its account); another account's download is a 404."""
    await set_faults(settings, outage=False, latency_after_capture_ms=0, decline_rate=0.0, latency_ms=0)
    rendered = 'jatra_tickets_pdf_total{by="notifications",outcome="rendered"}'
    before = await worker_metric(settings, "notifications", rendered)
    [owner] = await make_passengers(1)
    booked = await book(client, owner)
    assert (await final_state(client, owner, booked["booking_id"]))["status"] == "CONFIRMED"
    # this booking's entry, not the worker's count alone: another test's booking, confirmed late, may be
    # rendered meanwhile
    await eventually(lambda: redis.exists(cache.entry_key(booked["booking_id"])), 10, "the worker's render")
    assert await worker_metric(settings, "notifications", rendered) > before

    def api(outcome: str) -> float:
        return REGISTRY.get_sample_value("jatra_tickets_pdf_total", {"by": "api", "outcome": outcome}) or 0.0

    cached, fresh = api("cached"), api("rendered")
    url = f"/api/v1/bookings/{booked['booking_id']}/ticket.pdf"
    with orm_statements() as statements:
        response = await client.get(url, headers=owner.headers)
    assert response.status_code == 200 and response.content.startswith(b"%PDF-")
    assert api("cached") == cached + 1 and api("rendered") == fresh
    assert statements == [], statements
    [stranger] = await make_passengers(1)
    refused = await client.get(url, headers=stranger.headers)
    assert refused.status_code == 404 and api("cached") == cached + 1


async def test_a_ticket_not_rendered_yet_needs_no_orm_read_of_its_booking(
    jatra_processes_running: Stack,
    client: Client,
    make_passengers: MakePassengers,
    settings: Settings,
    redis: Redis,
) -> None:
    """In a rush the download nearly always comes before the worker's render, and most often renders the
    ticket itself. The booking (owner, status) and the ticket's catalogue part are one statement through
    the pool: no session, no ORM statement."""
    await set_faults(settings, outage=False, latency_after_capture_ms=0, decline_rate=0.0, latency_ms=0)
    [owner, stranger] = await make_passengers(2)
    booked = await book(client, owner)
    assert (await final_state(client, owner, booked["booking_id"]))["status"] == "CONFIRMED"
    url = f"/api/v1/bookings/{booked['booking_id']}/ticket.pdf"
    assert (await client.get(url, headers=stranger.headers)).status_code == 404
    await eventually(lambda: redis.exists(cache.entry_key(booked["booking_id"])), 10, "the worker's render")
    await redis.delete(cache.entry_key(booked["booking_id"]))  # as if the worker had not rendered it yet
    with orm_statements() as statements:
        response = await client.get(url, headers=owner.headers)
    assert response.status_code == 200 and response.content.startswith(b"%PDF-")
    assert statements == [], statements
    assert (await client.get(url, headers=stranger.headers)).status_code == 404
