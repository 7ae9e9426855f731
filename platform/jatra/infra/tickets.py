"""E-ticket QR payloads signed with Ed25519, verifiable offline with the public key alone.

A QR carries ``JT1.<base64url(payload json)>.<base64url(signature)>``. A checker on a train needs only
the public key (`GET /api/v1/tickets/public-key`) to tell a real ticket from a forged or altered one.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from jatra.settings import Settings

PREFIX = "JT1"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


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
    return f"{PREFIX}.{_b64(body)}.{_b64(key.sign(body))}"


@dataclass(frozen=True, slots=True)
class Verdict:
    valid: bool
    reason: str
    ticket: dict[str, Any] | None


def verify(public_key: Ed25519PublicKey, qr: str) -> Verdict:
    """Check a QR string offline; never raises on bad input."""
    parts = qr.strip().split(".")
    if len(parts) != 3 or parts[0] != PREFIX:
        return Verdict(False, "not a Jatra ticket code", None)
    try:
        body, signature = _unb64(parts[1]), _unb64(parts[2])
        public_key.verify(signature, body)
    except (ValueError, InvalidSignature):
        return Verdict(False, "signature does not match: forged or altered", None)
    return Verdict(True, "genuine", json.loads(body))
