"""The e-ticket QR text: signed, compact (base45 of zlib), and refused whenever anything is off."""

from __future__ import annotations

import json
import zlib

import base45
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from jatra.tickets import signing

PAYLOAD = {
    "ticket_number": "JT-2611-7Q4K2M9X",
    "booking_id": "5a276a38-7bb7-4be9-b661-72e5f1ce2223",
    "journey_id": 153,
    "train_number": "701",
    "from": "DA",
    "to": "CGP",
    "departs_at": "2026-11-23T07:00+06:00",
    "seat_labels": ["CHA-12", "CHA-13"],
    "names": ["Rahim Uddin", "Karima Begum"],
}
KEY = Ed25519PrivateKey.generate()


def test_a_signed_code_verifies_and_stays_in_the_qr_alphanumeric_alphabet() -> None:
    qr = signing.sign(KEY, PAYLOAD)
    assert set(qr) <= set("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ $%*+-./:")
    verdict = signing.verify(KEY.public_key(), qr)
    assert verdict.valid and verdict.ticket == PAYLOAD and verdict.reason == "genuine"


def test_an_altered_or_foreign_code_is_refused() -> None:
    body, signature = signing.unpack(signing.sign(KEY, PAYLOAD))
    altered = signing.pack(body.replace(b"CHA-12", b"CHA-11"), signature)
    other = signing.sign(Ed25519PrivateKey.generate(), PAYLOAD)
    for qr in (altered, other):
        verdict = signing.verify(KEY.public_key(), qr)
        assert not verdict.valid and verdict.ticket is None and "forged or altered" in verdict.reason


@pytest.mark.parametrize(
    ("qr", "reason"),
    [
        ("hello", "not a Jatra ticket code"),
        ("JT1.eyJhIjoxfQ.c2ln", "not a Jatra ticket code"),
        ("JT2:", "malformed ticket code"),
        ("JT2:abc", "malformed ticket code"),  # lower case is not base45
        ("JT2:" + base45.b45encode(b"x" * 64 + b"not zlib").decode(), "malformed ticket code"),
        ("JT2:" + base45.b45encode(b"x" * 10).decode(), "malformed ticket code"),  # shorter than a signature
    ],
)
def test_garbage_is_refused_with_a_reason_and_never_raises(qr: str, reason: str) -> None:
    verdict = signing.verify(KEY.public_key(), qr)
    assert not verdict.valid and verdict.reason == reason


def test_a_decompression_bomb_is_not_inflated() -> None:
    bomb = zlib.compress(json.dumps({"pad": "A" * 1_000_000}).encode(), 9)
    qr = "JT2:" + base45.b45encode(b"s" * 64 + bomb).decode()
    assert len(qr) < 3000  # it fits in a QR code
    verdict = signing.verify(KEY.public_key(), qr)
    assert not verdict.valid and verdict.reason == "malformed ticket code"
