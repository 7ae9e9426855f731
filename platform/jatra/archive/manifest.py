"""Manifests: one per segment, canonical JSON signed with Ed25519, chained per source by hash.

In the spirit of CloudTrail's digest files: a manifest names its segment (key, version id, SHA-256, size),
what is in it (event count, first and last event time), where it came from (the log file's identity and
byte range) and how it is locked, and it carries the SHA-256 of the previous manifest of the same source
with that manifest's sequence number and key. Canonical JSON (sorted keys, no spaces, ASCII, integers and
strings only) makes the bytes a function of the content; the signature covers every field but itself, and
the chain hashes a manifest's stored bytes, signature included.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
from dataclasses import dataclass
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from jatra.archive import layout, signing

FORMAT = "jatra.archive.manifest/1"
LOCK_MODE = "COMPLIANCE"


class ManifestError(ValueError):
    """Bytes that are not a well-formed manifest."""


def canonical(obj: Any) -> bytes:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False).encode()


def digest(raw: bytes) -> str:
    return hashlib.sha256(raw).hexdigest()


def iso(t: dt.datetime) -> str:
    t = t.astimezone(dt.UTC)
    return f"{t.strftime('%Y-%m-%dT%H:%M:%S')}.{t.microsecond // 1000:03d}Z"


def from_iso(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text).astimezone(dt.UTC)


@dataclass(frozen=True, slots=True)
class LogRange:
    """Bytes ``start``..``end`` of the log file with identity (``dev``, ``ino``)."""

    dev: int
    ino: int
    start: int
    end: int


@dataclass(frozen=True, slots=True)
class Link:
    """The previous manifest of the same source."""

    sequence: int
    key: str
    sha256: str


@dataclass(frozen=True, slots=True)
class Manifest:
    source: str
    sequence: int
    environment: str
    sealed_at: dt.datetime
    events: int
    first: dt.datetime | None
    last: dt.datetime | None
    segment_key: str
    segment_version: str
    segment_sha256: str
    segment_size: int
    uncompressed_size: int
    log: LogRange
    previous: Link | None
    retain_until: dt.datetime
    legal_hold: bool
    key_id: str = ""
    signature: str = ""

    @property
    def time_range(self) -> tuple[dt.datetime, dt.datetime]:
        """The first and last event time (the seal time for a segment whose lines carry none)."""
        return self.first or self.sealed_at, self.last or self.sealed_at

    @property
    def key(self) -> str:
        return layout.manifest_key(self.source, self.sequence, *self.time_range)

    def body(self) -> dict[str, Any]:
        """Every field the signature covers."""
        return {
            "format": FORMAT,
            "source": self.source,
            "sequence": self.sequence,
            "environment": self.environment,
            "sealed_at": iso(self.sealed_at),
            "events": {
                "count": self.events,
                "first": None if self.first is None else iso(self.first),
                "last": None if self.last is None else iso(self.last),
            },
            "segment": {
                "key": self.segment_key,
                "version_id": self.segment_version,
                "sha256": self.segment_sha256,
                "size": self.segment_size,
                "uncompressed_size": self.uncompressed_size,
            },
            "lock": {
                "mode": LOCK_MODE,
                "retain_until": iso(self.retain_until),
                "legal_hold": self.legal_hold,
            },
            "log": dataclasses.asdict(self.log),
            "previous": None if self.previous is None else dataclasses.asdict(self.previous),
            "key_id": self.key_id,
        }

    def signed(self, key: Ed25519PrivateKey) -> bytes:
        """The manifest's stored bytes, signed with ``key``."""
        unsigned = dataclasses.replace(self, key_id=signing.key_id(key.public_key()))
        body = unsigned.body()
        return canonical({**body, "signature": signing.sign(key, canonical(body))})

    def signature_ok(self, key: Ed25519PublicKey) -> bool:
        return signing.signature_ok(key, canonical(self.body()), self.signature)


def parse(raw: bytes) -> Manifest:
    """A manifest from its stored bytes; :class:`ManifestError` names what is malformed."""
    try:
        doc = json.loads(raw)
    except ValueError as exc:
        raise ManifestError(f"not JSON ({exc})") from None
    try:
        if doc.get("format") != FORMAT:
            raise ManifestError(f"unknown format {doc.get('format')!r}")
        events, segment, lock, log = doc["events"], doc["segment"], doc["lock"], doc["log"]
        previous = doc["previous"]
        manifest = Manifest(
            source=_str(doc["source"]),
            sequence=_int(doc["sequence"]),
            environment=_str(doc["environment"]),
            sealed_at=from_iso(doc["sealed_at"]),
            events=_int(events["count"]),
            first=None if events["first"] is None else from_iso(events["first"]),
            last=None if events["last"] is None else from_iso(events["last"]),
            segment_key=_str(segment["key"]),
            segment_version=_str(segment["version_id"]),
            segment_sha256=_str(segment["sha256"]),
            segment_size=_int(segment["size"]),
            uncompressed_size=_int(segment["uncompressed_size"]),
            log=LogRange(_int(log["dev"]), _int(log["ino"]), _int(log["start"]), _int(log["end"])),
            previous=None
            if previous is None
            else Link(_int(previous["sequence"]), _str(previous["key"]), _str(previous["sha256"])),
            retain_until=from_iso(lock["retain_until"]),
            legal_hold=bool(lock["legal_hold"]),
            key_id=_str(doc["key_id"]),
            signature=_str(doc["signature"]),
        )
    except (KeyError, TypeError, AttributeError, ValueError) as exc:
        if isinstance(exc, ManifestError):
            raise
        raise ManifestError(f"malformed ({type(exc).__name__}: {exc})") from None
    if lock.get("mode") != LOCK_MODE:
        raise ManifestError(f"lock mode {lock.get('mode')!r}, not {LOCK_MODE}")
    if canonical(manifest.body()) != canonical({k: v for k, v in doc.items() if k != "signature"}):
        raise ManifestError("fields that are not part of the format (or values not in canonical form)")
    return manifest


def _str(value: Any) -> str:
    if not isinstance(value, str):
        raise TypeError(f"expected a string, got {value!r}")
    return value


def _int(value: Any) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise TypeError(f"expected an integer, got {value!r}")
    return value
