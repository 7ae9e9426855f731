"""E-ticket QR payloads signed with Ed25519, verifiable offline with the public key alone.

A QR carries ``JT2:<base45(signature + zlib(payload json))>``, the shape of the EU digital certificates
(HC1:): base45 (RFC 9285) keeps to the QR alphanumeric alphabet, which packs 5.5 bits per character
against 8 for base64 text, and zlib shrinks the JSON. The same ticket as base64url JSON needed a
version 17 QR (85 modules a side); this needs version 13 (69), which is quicker to encode and to scan.
A checker on a train needs only the public key (`GET /api/v1/tickets/public-key`) to tell a real ticket
from a forged or altered one.
"""

from __future__ import annotations

import json
import zlib
from dataclasses import dataclass
from typing import Any

import base45
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from jatra.settings import Settings

PREFIX = "JT2:"
SIGNATURE_BYTES = 64
MAX_PAYLOAD_BYTES = 4096  # a ticket payload is ~300 bytes; refuse to inflate anything bigger


def pack(body: bytes, signature: bytes) -> str:
    """The QR text for a signed JSON body."""
    encoded: bytes = base45.b45encode(signature + zlib.compress(body, 9))
    return PREFIX + encoded.decode()


class BadCode(ValueError):
    """A QR text that is not a Jatra ticket code, or does not decode."""


def unpack(qr: str) -> tuple[bytes, bytes]:
    """(body, signature) of a QR text, still to be verified."""
    text = qr.strip()
    if not text.startswith(PREFIX):
        raise BadCode("not a Jatra ticket code")
    try:
        raw: bytes = base45.b45decode(text.removeprefix(PREFIX))
        inflater = zlib.decompressobj()
        body = inflater.decompress(raw[SIGNATURE_BYTES:], MAX_PAYLOAD_BYTES)
    except (ValueError, zlib.error) as exc:
        raise BadCode("malformed ticket code") from exc
    if len(raw) <= SIGNATURE_BYTES or inflater.unconsumed_tail or not inflater.eof:
        raise BadCode("malformed ticket code")
    return body, raw[:SIGNATURE_BYTES]


def signing_key(settings: Settings) -> Ed25519PrivateKey:
    """The ticket key, generated once into STATE_DIR/secrets (a real deployment mounts it)."""
    path = settings.state_dir / "secrets" / "tickets.ed25519.pem"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        pem = Ed25519PrivateKey.generate().private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        tmp = path.with_suffix(".tmp")
        tmp.write_bytes(pem)
        tmp.chmod(0o600)
        tmp.replace(path)
    key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    assert isinstance(key, Ed25519PrivateKey)
    return key


def public_pem(key: Ed25519PrivateKey) -> str:
    return (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )


def sign(key: Ed25519PrivateKey, payload: dict[str, Any]) -> str:
    body = json.dumps(payload, sort_keys=True, separators=(",", ":")).encode()
    return pack(body, key.sign(body))


@dataclass(frozen=True, slots=True)
class Verdict:
    valid: bool
    reason: str
    ticket: dict[str, Any] | None


def verify(public_key: Ed25519PublicKey, qr: str) -> Verdict:
    """Check a QR string offline; never raises on bad input."""
    try:
        body, signature = unpack(qr)
    except BadCode as exc:
        return Verdict(False, str(exc), None)
    try:
        public_key.verify(signature, body)
    except InvalidSignature:
        return Verdict(False, "signature does not match: forged or altered", None)
    return Verdict(True, "genuine", json.loads(body))
