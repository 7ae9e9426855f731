"""`jatra audit verify`: the archive is complete, in order and unaltered, or exactly what is wrong.

Per source, over the manifests whose time range meets the window (and the one before, for the link):

- every manifest is well formed, canonical, signed by a trusted key (the one given, else a published
  one) and says what its key says (source, sequence, time range);
- the chain holds: sequence numbers without a gap, each manifest carrying the previous one's key and the
  SHA-256 of its stored bytes, the first one carrying none;
- every segment is there: the version the manifest recorded, with its SHA-256, size and a COMPLIANCE
  retention at least as long as the manifest says;
- nothing was written over or hidden: a locked object has one version and no delete marker, so another
  version of a segment, manifest or key, or a delete marker on top, is reported as tampering;
- every segment has a manifest (the next one may wait for it: a seal in progress, a warning);
- in an export verified over its window, the manifests after the window's (its end bound) are signed and
  chained too, and a window whose last manifest has nothing after it in the export is warned of: nothing
  there proves that no later segment of the window was left out (as at the start, without the one
  before).

It reads through a :class:`Reader`: the bucket, or an export file (offline, where there are no versions).
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Protocol

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from jatra.archive import layout, signing
from jatra.archive.manifest import LOCK_MODE, Manifest, ManifestError, canonical, digest, iso, parse
from jatra.archive.store import ArchiveStore, Fetched, Version


@dataclass(frozen=True, slots=True, order=True)
class Problem:
    source: str
    sequence: int | None
    key: str
    what: str

    def __str__(self) -> str:
        where = self.source if self.sequence is None else f"{self.source} #{self.sequence}"
        return f"{where} {self.key}: {self.what}"


@dataclass(slots=True)
class Report:
    problems: list[Problem] = field(default_factory=list)
    warnings: list[Problem] = field(default_factory=list)
    sources: list[str] = field(default_factory=list)
    manifests: int = 0
    segments: int = 0
    events: int = 0
    key_ids: set[str] = field(default_factory=set)

    @property
    def ok(self) -> bool:
        return not self.problems


class Reader(Protocol):
    #: whether versions exist (the bucket) or not (an export: one copy of each object)
    versioned: bool
    #: whether the reader holds a source's whole history (the bucket) or a slice of it (an export)
    complete: bool

    def sources(self) -> list[str]: ...
    def versions(self, prefix: str) -> dict[str, list[Version]]: ...
    def fetch(self, key: str, version_id: str | None) -> Fetched | None: ...


class BucketReader:
    versioned = True
    complete = True

    def __init__(self, store: ArchiveStore) -> None:
        self.store = store

    def sources(self) -> list[str]:
        return self.store.sources()

    def versions(self, prefix: str) -> dict[str, list[Version]]:
        return self.store.versions(prefix)

    def fetch(self, key: str, version_id: str | None) -> Fetched | None:
        return self.store.get(key, version_id)


def published_keys(reader: Reader, report: Report) -> dict[str, Ed25519PublicKey]:
    """The public keys under ``keys/``; one that was replaced or is malformed is a problem, not a key."""
    keys = {}
    for key, versions in sorted(reader.versions(layout.KEYS).items()):
        objects = [v for v in versions if not v.delete_marker]
        if reader.versioned and (len(objects) > 1 or any(v.delete_marker and v.latest for v in versions)):
            report.problems.append(Problem("keys", None, key, _tampered("public key", versions)))
            continue
        fetched = reader.fetch(key, objects[0].version_id) if objects else None
        if fetched is None:
            continue
        try:
            public = signing.load_public(fetched.data)
        except (ValueError, TypeError) as exc:
            report.problems.append(Problem("keys", None, key, f"not an Ed25519 public key ({exc})"))
            continue
        if layout.public_key_key(signing.key_id(public)) != key:
            report.problems.append(Problem("keys", None, key, f"holds key {signing.key_id(public)}"))
            continue
        keys[signing.key_id(public)] = public
    return keys


def _tampered(what: str, versions: list[Version]) -> str:
    objects = [v.version_id for v in versions if not v.delete_marker]
    if any(v.delete_marker and v.latest for v in versions):
        return f"deleted: a delete marker hides the locked {what}"
    return (
        f"overwritten: {len(objects)} versions of a locked {what} ({', '.join(objects)}); "
        "one was written over the original"
    )


def verify(
    reader: Reader,
    *,
    since: dt.datetime | None = None,
    until: dt.datetime | None = None,
    sources: Iterable[str] | None = None,
    public_key: Ed25519PublicKey | None = None,
    workers: int = 8,
) -> Report:
    report = Report()
    published = published_keys(reader, report)
    trusted = {signing.key_id(public_key): public_key} if public_key is not None else published
    if public_key is None and len(published) > 1:
        report.warnings.append(
            Problem(
                "keys",
                None,
                layout.KEYS,
                f"{len(published)} keys published: pin the right one with --public-key",
            )
        )
    report.sources = sorted(set(sources)) if sources else reader.sources()
    with ThreadPoolExecutor(workers) as pool:
        for source in report.sources:
            _SourceCheck(reader, source, trusted, public_key is not None, report, pool).run(since, until)
    report.problems.sort(key=lambda p: (p.source, p.sequence or 0, p.key, p.what))
    return report


@dataclass(frozen=True, slots=True)
class _Lock:
    """What the bucket says protects an object version."""

    mode: str | None
    retain_until: dt.datetime | None
    legal_hold: bool

    @classmethod
    def of(cls, got: Fetched) -> _Lock:
        return cls(got.lock_mode, got.retain_until, got.legal_hold)


@dataclass(frozen=True, slots=True)
class _SegmentFacts:
    sha256: str
    size: int
    lock: _Lock


class _SourceCheck:
    def __init__(
        self,
        reader: Reader,
        source: str,
        trusted: dict[str, Ed25519PublicKey],
        pinned: bool,
        report: Report,
        pool: ThreadPoolExecutor,
    ) -> None:
        self.reader = reader
        self.source = source
        self.trusted = trusted
        self.pinned = pinned
        self.report = report
        self.pool = pool
        self.chain_key: str | None = None  # the trusted key that signed the chain so far

    def problem(self, sequence: int | None, key: str, what: str) -> None:
        self.report.problems.append(Problem(self.source, sequence, key, what))

    def run(self, since: dt.datetime | None, until: dt.datetime | None) -> None:
        manifests = self.reader.versions(f"{layout.MANIFESTS}{self.source}/")
        segments = self.reader.versions(f"{layout.SEGMENTS}{self.source}/")
        by_seq: dict[int, list[layout.ManifestName]] = {}
        for key in manifests:
            name = layout.parse_manifest_key(key)
            if name is None or name.source != self.source:
                self.problem(None, key, "not an archive manifest key")
                continue
            by_seq.setdefault(name.sequence, []).append(name)
        for seq, names in sorted(by_seq.items()):
            if len(names) > 1:
                keys = ", ".join(n.key for n in names)
                self.problem(seq, names[0].key, f"{len(names)} manifests claim this sequence number: {keys}")
        inside = [s for s, names in by_seq.items() if any(n.overlaps(since, until) for n in names)]
        if not inside and by_seq and not self.reader.complete:  # an export's bounds with nothing between
            for seq in range(min(by_seq) + 1, max(by_seq)):
                if seq not in by_seq:
                    self._gap(seq)
        if inside:
            windowed = since is not None or until is not None
            bounded = windowed and not self.reader.complete  # an export read over its window
            lo = min(inside) if windowed or not self.reader.complete else 1
            hi = max(inside) if windowed else max(by_seq)
            # an export's manifests after the window are its end bound: chained and signed, no segment
            last = max(by_seq) if bounded else hi
            self._chain(by_seq, manifests, segments, lo, hi, last)
            if bounded and last == hi:
                self.report.warnings.append(
                    Problem(
                        self.source,
                        hi,
                        by_seq[hi][0].key,
                        "no manifest after this one in the export: nothing proves that no later segment "
                        "of the window was left out (it may have been the last one sealed)",
                    )
                )
        self._orphans(by_seq, segments, inside, since is None and until is None)

    def _chain(
        self,
        by_seq: dict[int, list[layout.ManifestName]],
        manifests: dict[str, list[Version]],
        segments: dict[str, list[Version]],
        lo: int,
        hi: int,
        last: int,
    ) -> None:
        """Manifests ``lo`` to ``last`` (and the one before, for its hash), segments ``lo`` to ``hi``."""
        # an export's chain from its start bound on: a segment of the window left out after it is a gap
        first = min(lo, *by_seq) if not self.reader.complete else lo - 1 if lo - 1 in by_seq else lo
        if lo > 1 and first == lo:
            expected = f"{layout.MANIFESTS}{self.source}/{lo - 1:010d}_*.json"
            if self.reader.complete:
                self.problem(lo - 1, expected, "missing: no manifest with this sequence number")
            else:
                self.report.warnings.append(
                    Problem(
                        self.source,
                        lo,
                        expected,
                        "the chain before this manifest is not in the export: nothing proves that no "
                        "earlier segment of the window was left out",
                    )
                )
        seqs = list(range(first, last + 1))
        fetched = list(self.pool.map(lambda s: self._fetch_manifest(s, by_seq, manifests), seqs))
        checked: list[tuple[Manifest, layout.ManifestName]] = []
        previous: tuple[layout.ManifestName, bytes] | None = None
        for seq, got in zip(seqs, fetched, strict=True):
            if seq not in by_seq:
                self._gap(seq)
                previous = None
                continue
            name = by_seq[seq][0]
            reported = seq >= lo  # the one before the window is read for its hash only
            manifest = self._check_manifest(name, got, manifests[name.key], previous, reported)
            previous = (name, got[0]) if got is not None else None
            if manifest is not None and reported and seq <= hi:
                checked.append((manifest, name))
        facts = list(self.pool.map(lambda mn: self._segment_facts(mn[0]), checked))
        for (manifest, name), fact in zip(checked, facts, strict=True):
            self._check_segment(manifest, name, segments, fact)

    def _gap(self, seq: int) -> None:
        expected = f"{layout.MANIFESTS}{self.source}/{seq:010d}_*.json"
        self.problem(seq, expected, "missing: no manifest with this sequence number (a gap in the chain)")

    def _fetch_manifest(
        self, seq: int, by_seq: dict[int, list[layout.ManifestName]], manifests: dict[str, list[Version]]
    ) -> tuple[bytes, Fetched] | None:
        if seq not in by_seq:
            return None
        versions = manifests[by_seq[seq][0].key]
        objects = sorted((v for v in versions if not v.delete_marker), key=lambda v: not v.latest)
        if not objects:
            return None
        got = self.reader.fetch(by_seq[seq][0].key, objects[0].version_id)
        return None if got is None else (got.data, got)

    def _check_manifest(
        self,
        name: layout.ManifestName,
        got: tuple[bytes, Fetched] | None,
        versions: list[Version],
        previous: tuple[layout.ManifestName, bytes] | None,
        reported: bool,
    ) -> Manifest | None:
        seq, key = name.sequence, name.key
        problems: list[str] = []
        objects = [v for v in versions if not v.delete_marker]
        if self.reader.versioned and (
            len(objects) > 1 or any(v.delete_marker and v.latest for v in versions)
        ):
            problems.append(_tampered("manifest", versions))
        manifest = None
        if got is None:
            problems.append("missing: no version of this manifest can be read")
        else:
            raw, fetched = got
            try:
                manifest = parse(raw)
            except ManifestError as exc:
                problems.append(f"malformed manifest: {exc}")
            else:
                problems += self._manifest_problems(manifest, name, raw, fetched, previous)
        if reported:
            for what in problems:
                self.problem(seq, key, what)
            if manifest is not None:
                self.report.manifests += 1
        return manifest

    def _manifest_problems(
        self,
        m: Manifest,
        name: layout.ManifestName,
        raw: bytes,
        fetched: Fetched,
        previous: tuple[layout.ManifestName, bytes] | None,
    ) -> list[str]:
        problems = []
        if raw != canonical(json.loads(raw)):
            problems.append("not in canonical form (its bytes were rewritten)")
        public = self.trusted.get(m.key_id)
        if public is None:
            whose = "the key given with --public-key" if self.pinned else "a key published in the bucket"
            problems.append(f"signed by key {m.key_id!r}, which is not {whose}")
        elif not m.signature_ok(public):
            problems.append(f"signature does not verify with key {m.key_id} (forged or edited)")
        else:
            self.report.key_ids.add(m.key_id)
            if self.chain_key is not None and m.key_id != self.chain_key:
                problems.append(
                    f"signed by key {m.key_id}, the manifests before it by {self.chain_key} (a key change)"
                )
            self.chain_key = m.key_id
        if m.source != self.source:
            problems.append(f"claims source {m.source!r}")
        if m.sequence != name.sequence:
            problems.append(
                f"claims sequence {m.sequence}, but its key says {name.sequence} (reordered or replaced)"
            )
        elif m.key != name.key:
            problems.append(f"its key does not match its content (it says {m.key})")
        problems += self._link_problems(m, name, previous)
        if self.reader.versioned:
            problems += _lock_problems("manifest", _Lock.of(fetched), m)
        return problems

    def _link_problems(
        self, m: Manifest, name: layout.ManifestName, previous: tuple[layout.ManifestName, bytes] | None
    ) -> list[str]:
        problems = []
        if name.sequence == 1:
            if m.previous is not None:
                problems.append("the first manifest of a source links to a previous one")
        elif m.previous is None:
            problems.append("no link to the previous manifest")
        elif m.previous.sequence != name.sequence - 1:
            problems.append(f"links to sequence {m.previous.sequence}, not {name.sequence - 1}")
        elif previous is not None:
            before, before_raw = previous
            if m.previous.key != before.key:
                problems.append(f"links to {m.previous.key}, not {before.key}")
            elif m.previous.sha256 != digest(before_raw):
                problems.append(
                    f"hash chain broken: it records SHA-256 {m.previous.sha256} for manifest "
                    f"#{before.sequence}, which hashes to {digest(before_raw)}"
                )
        return problems

    def _segment_facts(self, m: Manifest) -> _SegmentFacts | None:
        got = self.reader.fetch(m.segment_key, m.segment_version or None)
        if got is None:
            return None
        return _SegmentFacts(digest(got.data), len(got.data), _Lock.of(got))

    def _check_segment(
        self,
        m: Manifest,
        name: layout.ManifestName,
        segments: dict[str, list[Version]],
        facts: _SegmentFacts | None,
    ) -> None:
        seq, key = name.sequence, m.segment_key
        if key != layout.segment_key(self.source, seq):
            self.problem(seq, name.key, f"names segment {key}, not {layout.segment_key(self.source, seq)}")
        versions = segments.get(key, [])
        if self.reader.versioned:
            if any(v.delete_marker and v.latest for v in versions):
                self.problem(seq, key, "deleted: a delete marker hides the locked segment")
            others = [
                v.version_id for v in versions if not v.delete_marker and v.version_id != m.segment_version
            ]
            if others:
                self.problem(
                    seq, key, f"overwritten: version(s) {', '.join(others)} written over the locked segment"
                )
        if facts is None:
            what = f"version {m.segment_version} " if self.reader.versioned else ""
            self.problem(seq, key, f"missing: the segment {what}the manifest records is gone")
            return
        if facts.sha256 != m.segment_sha256:
            self.problem(
                seq, key, f"content changed: SHA-256 {facts.sha256}, the manifest says {m.segment_sha256}"
            )
        elif facts.size != m.segment_size:
            self.problem(seq, key, f"size {facts.size}, the manifest says {m.segment_size}")
        if self.reader.versioned:
            for what in _lock_problems("segment", facts.lock, m):
                self.problem(seq, key, what)
        self.report.segments += 1
        self.report.events += m.events

    def _orphans(
        self,
        by_seq: dict[int, list[layout.ManifestName]],
        segments: dict[str, list[Version]],
        inside: list[int],
        everything: bool,
    ) -> None:
        last = max(by_seq, default=0)
        for key in segments:
            parsed = layout.parse_segment_key(key)
            if parsed is None or parsed[0] != self.source:
                self.problem(None, key, "not an archive segment key")
                continue
            seq = parsed[1]
            if seq in by_seq or not (everything or (inside and min(inside) <= seq <= max(inside) + 1)):
                continue
            if seq == last + 1:
                self.report.warnings.append(
                    Problem(
                        self.source, seq, key, "uploaded, its manifest not yet written (a seal in progress)"
                    )
                )
            else:
                self.problem(seq, key, "a segment without a manifest")


def _lock_problems(what: str, lock: _Lock, m: Manifest) -> list[str]:
    """How ``lock`` falls short of what manifest ``m`` records for its objects: COMPLIANCE retention until
    its date, and the legal hold if it records one (a hold can be lifted by whoever may set it; without
    it the object can be deleted once its retention ends)."""
    problems = []
    if lock.mode != LOCK_MODE:
        problems.append(f"the {what} is not under {LOCK_MODE} retention (mode {lock.mode})")
    elif lock.retain_until is None or lock.retain_until < m.retain_until:
        shown = "none" if lock.retain_until is None else iso(lock.retain_until)
        problems.append(
            f"the {what}'s retention ends {shown}, before the {iso(m.retain_until)} its manifest records"
        )
    if m.legal_hold and not lock.legal_hold:
        problems.append(f"the {what}'s legal hold is off: its manifest records one (lifted)")
    return problems
