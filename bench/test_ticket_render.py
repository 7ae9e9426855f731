"""E-ticket cost per booking (`make bench-tickets`, pytest-benchmark): sign, encode the QR, render the PDF.

Each confirmed booking renders its ticket once; at saturation this was the largest single item in the
API's CPU profile (py-spy), so it is measured on its own. `make test` runs it once, untimed, so it cannot rot.
"""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from pytest_benchmark.fixture import BenchmarkFixture
from tests.fixtures.tickets import TICKET_VIEW as TICKET

from jatra.tickets import pdf, signing
from jatra.tickets.view import qr_payload

KEY = Ed25519PrivateKey.generate()


def _ticket() -> bytes:
    return pdf.render(TICKET, signing.sign(KEY, qr_payload(TICKET)))


@pytest.mark.benchmark(group="ticket")
def test_render_one_ticket(benchmark: BenchmarkFixture) -> None:
    pdf = benchmark(_ticket)
    assert pdf.startswith(b"%PDF-") and TICKET["ticket_number"].encode() in pdf


@pytest.mark.benchmark(group="ticket")
def test_verify_one_code(benchmark: BenchmarkFixture) -> None:
    qr = signing.sign(KEY, qr_payload(TICKET))
    verdict = benchmark(signing.verify, KEY.public_key(), qr)
    assert verdict.valid
