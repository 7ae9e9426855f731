"""`jatra audit search`: events by trace id, booking id and time, reading only the segments whose time
range (in their manifest's key) meets the window, each at the version its manifest recorded.

Only what proves itself is printed: a manifest signed by a trusted key (the one given, else one published
in the bucket) over a segment with the SHA-256 it records. Anything else is left out with a warning that
names it; `jatra audit verify` says the rest (the chain, the locks, overwritten versions).
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from jatra.archive import layout, segments, signing
from jatra.archive.manifest import Manifest, ManifestError, digest, parse
from jatra.archive.store import ArchiveStore
from jatra.archive.verify import BucketReader, Report, published_keys


@dataclass(frozen=True, slots=True)
class Query:
    since: dt.datetime | None = None
    until: dt.datetime | None = None
    trace_id: str | None = None
    booking_id: str | None = None

    def matches(self, raw: bytes) -> bool:
        # cheap byte tests first: most lines of most segments fail them
        for needle in (self.trace_id, self.booking_id):
            if needle and needle.encode() not in raw:
                return False
        if self.since is not None or self.until is not None:
            t = segments.event_time(raw)
            if t is None or (self.since and t < self.since) or (self.until and t > self.until):
                return False
        if not (self.trace_id or self.booking_id):
            return True
        try:
            doc = json.loads(raw)
        except ValueError:
            return False
        if self.trace_id and self.trace_id not in (_field(doc, "trace", "id"), doc.get("trace.id")):
            return False
        return not self.booking_id or (
            doc.get("booking_id") == self.booking_id
            or self.booking_id in str(_field(doc, "url", "path") or doc.get("url.path") or "")
        )


def _field(doc: dict[str, Any], *path: str) -> Any:
    for part in path:
        if not isinstance(doc, dict):
            return None
        doc = doc.get(part)  # type: ignore[assignment]
    return doc


@dataclass(slots=True)
class Found:
    events: list[bytes] = field(default_factory=list)
    segments: int = 0
    warnings: list[str] = field(default_factory=list)
    #: segments whose events were left out: unreadable, or not proved by a trusted signature and digest
    left_out: int = 0
    #: more than one key published and none pinned: the events are only as good as the worst of them
    unpinned: bool = False


def covering(
    store: ArchiveStore,
    since: dt.datetime | None,
    until: dt.datetime | None,
    sources: Iterable[str] | None = None,
) -> list[layout.ManifestName]:
    """The manifests (by key alone) whose time range meets the window, in source and sequence order."""
    return [name for name in listed(store, sources) if name.overlaps(since, until)]


def listed(store: ArchiveStore, sources: Iterable[str] | None = None) -> list[layout.ManifestName]:
    """Every manifest of ``sources`` (all, if None), by key alone, in source and sequence order."""
    names = []
    for source in sorted(set(sources)) if sources else store.sources():
        for key in store.keys(f"{layout.MANIFESTS}{source}/"):
            name = layout.parse_manifest_key(key)
            if name is not None and name.source == source:
                names.append(name)
    return names


@dataclass(frozen=True, slots=True)
class Segment:
    manifest: Manifest
    manifest_raw: bytes
    data: bytes  # empty when the segment cannot be read
    warning: str | None


Keys = dict[str, Ed25519PublicKey]


def trusted_keys(store: ArchiveStore, public_key: Ed25519PublicKey | None) -> tuple[Keys, list[str]]:
    """The keys a manifest may be signed with (``public_key`` alone, when given), and warnings about the
    published ones (replaced, malformed, or more than one: then any of them is trusted)."""
    if public_key is not None:
        return {signing.key_id(public_key): public_key}, []
    report = Report()
    keys = published_keys(BucketReader(store), report)
    warnings = [str(p) for p in report.problems]
    if len(keys) > 1:  # anyone who can write the bucket can publish a key: which is the archiver's?
        warnings.append(f"{len(keys)} keys published ({', '.join(sorted(keys))}): pin one with --public-key")
    return keys, warnings


def read_segment(store: ArchiveStore, name: layout.ManifestName, trusted: Keys | None = None) -> Segment:
    """A manifest and its segment's bytes (the version it records), with a warning if they disagree or,
    given ``trusted``, if no trusted key verifies the manifest's signature."""
    fetched = store.get(name.key)
    if fetched is None:
        raise ManifestError(f"{name.key} cannot be read")
    manifest = parse(fetched.data)
    if trusted is not None:
        public = trusted.get(manifest.key_id)
        claims = (manifest.source, manifest.sequence)
        if claims != (name.source, name.sequence):  # a signed manifest copied to another key
            said = f"{name.source} #{name.sequence}"
            where = f"claims {manifest.source} #{manifest.sequence}, but its key says {said}"
            return Segment(manifest, fetched.data, b"", f"{name.key}: {where} (run `jatra audit verify`)")
        if public is None or not manifest.signature_ok(public):
            why = (
                "its signature does not verify" if public else f"signed by untrusted key {manifest.key_id!r}"
            )
            return Segment(manifest, fetched.data, b"", f"{name.key}: {why} (run `jatra audit verify`)")
    segment = store.get(manifest.segment_key, manifest.segment_version)
    if segment is None:
        return Segment(
            manifest, fetched.data, b"", f"{manifest.segment_key}: missing (run `jatra audit verify`)"
        )
    warning = None
    if digest(segment.data) != manifest.segment_sha256:
        warning = f"{manifest.segment_key}: does not match its manifest (run `jatra audit verify`)"
    return Segment(manifest, fetched.data, segment.data, warning)


def search(
    store: ArchiveStore,
    query: Query,
    sources: Iterable[str] | None = None,
    workers: int = 8,
    public_key: Ed25519PublicKey | None = None,
) -> Found:
    """The events that match, from segments a trusted signature and their digest prove; the others are
    left out, each named in a warning."""
    trusted, warnings = trusted_keys(store, public_key)
    found = Found(warnings=warnings, unpinned=len(trusted) > 1)
    names = covering(store, query.since, query.until, sources)

    def one(name: layout.ManifestName) -> tuple[list[bytes], str | None]:
        try:
            got = read_segment(store, name, trusted)
        except ManifestError as exc:
            return [], f"{name.key}: {exc}; its events are left out"
        if got.warning is not None:
            return [], f"{got.warning}; its events are left out"
        return [raw for raw in segments.lines_of(got.data) if query.matches(raw)], None

    with ThreadPoolExecutor(workers) as pool:
        for events, warning in pool.map(one, names):
            found.events += events
            if warning:
                found.warnings.append(warning)
                found.left_out += 1
    found.segments = len(names)
    epoch = dt.datetime.min.replace(tzinfo=dt.UTC)
    found.events.sort(key=lambda raw: segments.event_time(raw) or epoch)
    return found
