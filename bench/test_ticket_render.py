"""E-ticket cost per booking (`make bench-tickets`, pytest-benchmark): sign, encode the QR, render the PDF.

Each confirmed booking renders its ticket once; at saturation this was the largest single item in the
API's CPU profile (py-spy), so it is measured on its own. `make test` runs it once, untimed, so it cannot rot.
"""

from __future__ import annotations

from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from pytest_benchmark.fixture import BenchmarkFixture

from jatra.db.tickets import qr_payload
from jatra.infra import ticket_pdf, tickets

TICKET: dict[str, Any] = {
    "ticket_number": "JT-2611-7Q4K2M9X",
    "booking_id": "5a276a38-7bb7-4be9-b661-72e5f1ce2223",
    "journey_id": 153,
    "train_number": "701",
    "train_name": "Subarna Express",
    "from": "DA",
    "to": "CGP",
    "departs_at": "2026-11-23T07:00+06:00",
    "class": "SNIGDHA",
    "seats": [71706034, 71706035, 71706036],
    "seat_labels": ["CHA-12", "CHA-13", "CHA-14"],
    "passengers": [
        {"name": "Rahim Uddin", "age": 34, "gender": "male"},
        {"name": "Karima Begum", "age": 31, "gender": "female"},
        {"name": "Nadia Akter", "age": 8, "gender": "female"},
    ],
    "amount": "2415.00",
}
KEY = Ed25519PrivateKey.generate()


def _ticket() -> bytes:
    return ticket_pdf.render(TICKET, tickets.sign(KEY, qr_payload(TICKET)))


@pytest.mark.benchmark(group="ticket")
def test_render_one_ticket(benchmark: BenchmarkFixture) -> None:
    pdf = benchmark(_ticket)
    assert pdf.startswith(b"%PDF-") and TICKET["ticket_number"].encode() in pdf


@pytest.mark.benchmark(group="ticket")
def test_verify_one_code(benchmark: BenchmarkFixture) -> None:
    qr = tickets.sign(KEY, qr_payload(TICKET))
    verdict = benchmark(tickets.verify, KEY.public_key(), qr)
    assert verdict.valid
