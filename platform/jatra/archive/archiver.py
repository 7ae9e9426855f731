"""The archiver: log lines into segments, sealed per source by size or age, each stored with its manifest.

One seal, in this order, each step durable before the next:

1. the plan (:mod:`jatra.archive.journal`): the segment's byte range, hash, sequence and previous manifest;
2. the segment, unless that key already holds these bytes (a crash after the upload);
3. the signed manifest, unless it is already there, byte for byte;
4. the cursor of the log follower, past the segment's last line;
5. the plan is deleted.

A crash anywhere is finished on restart from the plan (the bytes are rebuilt from the log file), so every
line ends up in exactly one segment and no key is ever written twice (in an Object Lock bucket a second
write would be a second version, which verify reports as tampering).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import structlog
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from opentelemetry import trace

from jatra.archive import layout, segments, signing
from jatra.archive.journal import Journal
from jatra.archive.manifest import Link, LogRange, Manifest, ManifestError, digest, parse
from jatra.archive.store import ArchiveStore, StoreError
from jatra.infra.logfiles import Chunk, Follower, Position
from jatra.settings import Settings
from jatra.telemetry import catalogue as c
from jatra.telemetry.metrics import counter, gauge

log = structlog.get_logger()
tracer = trace.get_tracer(__name__)
EVENTS = counter(c.ARCHIVE_EVENTS)
SEGMENTS = counter(c.ARCHIVE_SEGMENTS)
BYTES = counter(c.ARCHIVE_BYTES)
LAG = gauge(c.ARCHIVE_LAG_SECONDS)
LAST_SEAL = gauge(c.ARCHIVE_LAST_SEAL)

#: the most bytes read from one source at a time, and in one pass over all of them
READ_BUDGET = 1 << 20
PASS_BUDGET = 64 << 20

#: called at each durable step of a seal with (step, source); the crash tests stop the process there
Checkpoint = Callable[[str, str], None]


class RangeLost(StoreError):
    """The planned byte range can no longer be read as it was (the file is gone or was rewritten)."""


@dataclass(slots=True)
class OpenSegment:
    """Lines read from one source and not yet sealed: bytes ``start``..``end`` of one file."""

    start: Position
    end: Position
    lines: list[bytes] = field(default_factory=list)
    size: int = 0
    oldest: float | None = None  # Unix time of its first line (its event time, else when it was read)

    def add(self, chunk: Chunk, now: float) -> None:
        if chunk.lines and self.oldest is None:
            stamp = segments.event_time(chunk.lines[0].raw)
            self.oldest = stamp.timestamp() if stamp is not None else now
        self.lines.extend(line.raw for line in chunk.lines)
        self.size += sum(len(line.raw) + 1 for line in chunk.lines)
        self.end = chunk.after


def state_dir_for(settings: Settings) -> Path:
    """Where the archiver keeps its cursor and plans: one directory per bucket."""
    return settings.state_dir / "archive" / settings.archive_bucket


class Archiver:
    def __init__(
        self,
        settings: Settings,
        store: ArchiveStore,
        key: Ed25519PrivateKey,
        log_dir: Path | None = None,
        state_dir: Path | None = None,
        checkpoint: Checkpoint | None = None,
    ) -> None:
        self.settings = settings
        self.store = store
        self.key = key
        state = state_dir or state_dir_for(settings)
        self.follower = Follower(log_dir or settings.logs, state / "cursor.json", reader="archive")
        self.journal = Journal(state / "pending")
        self.checkpoint = checkpoint or (lambda step, source: None)
        self.open: dict[str, OpenSegment] = {}
        self.heads: dict[str, Link | None] = {}  # per source, the last manifest (from the bucket)
        # measured when scraped, from the log files: a pass that fails (the bucket unreachable, at start
        # too) or never ends leaves the lag growing, as it does, not frozen at its last value
        LAG.set_function(self.lag_seconds)
        self.prepared = False

    @classmethod
    def from_settings(cls, settings: Settings) -> Archiver:
        return cls(settings, ArchiveStore.from_settings(settings), signing.signing_key(settings))

    # -- one pass ------------------------------------------------------------------------------------------
    def run_once(self, now: float | None = None) -> int:
        """Finish an interrupted seal, read what is new and seal what is due; returns the events sealed."""
        self._prepare()
        sealed = self.finish_pending()
        budget = max(min(READ_BUDGET, self.settings.archive_segment_bytes), 4096)
        read = 0
        while read < PASS_BUDGET:
            positions = {source: seg.end for source, seg in self.open.items()}
            chunks = self.follower.read_from(positions, budget)
            if not chunks:
                break
            for chunk in chunks:
                read += 1 + sum(len(line.raw) + 1 for line in chunk.lines)
                sealed += self._add(chunk, time.time() if now is None else now)
        now = time.time() if now is None else now
        for source, seg in list(self.open.items()):
            if seg.oldest is not None and now - seg.oldest >= self.settings.archive_segment_age_s:
                sealed += self.seal(source)
        return sealed

    def lag_seconds(self) -> float:
        """The age of the oldest log event not sealed yet (0: all sealed): the cursor moves on a seal only,
        so the follower's oldest unread line is the oldest in an open segment, or in no segment yet."""
        oldest = self.follower.oldest_unread()
        return max(time.time() - oldest, 0.0) if oldest is not None else 0.0

    def flush(self) -> int:
        """Seal every open segment now, whatever its size or age (tests, a clean shutdown)."""
        return sum(self.seal(source) for source in list(self.open))

    def _add(self, chunk: Chunk, now: float) -> int:
        sealed = 0
        seg = self.open.get(chunk.source)
        if seg is not None and chunk.start != seg.end:
            # not where the open segment ends: a rotated file finished, or one cut short in place
            sealed += self.seal(chunk.source)
            seg = None
        if seg is None:
            start = chunk.start or chunk.after
            seg = self.open[chunk.source] = OpenSegment(start, start)
        seg.add(chunk, now)
        if not seg.lines:  # only blank lines, or on to the next file: nothing to keep
            self.follower.commit([Chunk(chunk.source, [], seg.end)])
            del self.open[chunk.source]
        elif seg.size >= self.settings.archive_segment_bytes:
            sealed += self.seal(chunk.source)
        return sealed

    # -- sealing -------------------------------------------------------------------------------------------
    def seal(self, source: str) -> int:
        """Seal the open segment of ``source``; returns its event count."""
        seg = self.open.pop(source)
        if not seg.lines:
            self.follower.commit([Chunk(source, [], seg.end)])
            return 0
        built = segments.build(seg.lines)
        head = self._head(source)
        sealed_at = dt.datetime.now(dt.UTC)
        plan = Manifest(
            source=source,
            sequence=1 if head is None else head.sequence + 1,
            environment=self.settings.environment,
            sealed_at=sealed_at.replace(microsecond=sealed_at.microsecond // 1000 * 1000),
            events=built.events,
            first=built.first,
            last=built.last,
            segment_key="",
            segment_version="",
            segment_sha256=built.sha256,
            segment_size=len(built.data),
            uncompressed_size=built.raw_bytes,
            log=LogRange(seg.start.dev, seg.start.ino, seg.start.offset, seg.end.offset),
            previous=head,
            retain_until=self.store.retain_until(sealed_at),
            legal_hold=self.store.legal_hold,
        )
        plan = dataclasses.replace(plan, segment_key=layout.segment_key(source, plan.sequence))
        self.journal.write(plan)
        self.checkpoint("planned", source)
        self._complete(plan, built.data, seg.end)
        return built.events

    def finish_pending(self) -> int:
        """Complete every seal a crash (or a failed upload) interrupted; returns the events sealed."""
        sealed = 0
        for plan in self.journal.pending():
            self.open.pop(plan.source, None)  # what was read past the plan is read again after it
            try:
                self._complete(plan, None)
            except RangeLost as exc:
                reason = str(exc)
            else:
                sealed += plan.events
                continue
            # nothing of it was stored: drop the plan and read again, from the cursor, whatever is there
            log.error("archive.plan.abandoned", source=plan.source, sequence=plan.sequence, reason=reason)
            self.journal.done(plan.source)
        return sealed

    def _complete(self, plan: Manifest, data: bytes | None, end: Position | None = None) -> None:
        """Store the plan's segment and manifest, then move the cursor past it: to ``end`` (where the
        segment ends, with its file's fingerprint) when sealing, to the plan's byte range when finishing
        one a crash interrupted (the follower takes the fingerprint from the cursor, or the next read)."""
        attributes: dict[str, str | int] = {
            "jatra.archive.source": plan.source,
            "jatra.archive.sequence": plan.sequence,
            "jatra.archive.events": plan.events,
            "jatra.archive.bytes": plan.segment_size,
        }
        with tracer.start_as_current_span("archive.seal", attributes=attributes):
            try:
                self._check_head(plan)
                version = self._store_segment(plan, data)
                self.checkpoint("segment-stored", plan.source)
                manifest = dataclasses.replace(plan, segment_version=version)
                raw = manifest.signed(self.key)
                self._store_manifest(manifest, raw)
                self.checkpoint("manifest-stored", plan.source)
                after = end or Position(plan.log.dev, plan.log.ino, plan.log.end)
                self.follower.commit([Chunk(plan.source, [], after)])
                self.checkpoint("cursor-committed", plan.source)
                self.journal.done(plan.source)
            except Exception as exc:
                SEGMENTS.labels("failed").inc()
                self.heads.pop(plan.source, None)  # read the head again from the bucket next time
                log.warning(
                    "archive.seal.failed",
                    source=plan.source,
                    sequence=plan.sequence,
                    error=type(exc).__name__,
                )
                raise
        self.heads[plan.source] = Link(plan.sequence, manifest.key, digest(raw))
        SEGMENTS.labels("sealed").inc()
        EVENTS.inc(plan.events)
        BYTES.inc(plan.segment_size)
        LAST_SEAL.set(time.time())
        log.info(
            "archive.sealed",
            source=plan.source,
            sequence=plan.sequence,
            events=plan.events,
            bytes=plan.segment_size,
            key=plan.segment_key,
        )

    def _check_head(self, plan: Manifest) -> None:
        head = self._head(plan.source)
        if head is not None and head.sequence == plan.sequence:
            return  # the manifest is stored already: _store_manifest checks it is this one
        if head != plan.previous:
            raise StoreError(
                f"{plan.source}: the plan for sequence {plan.sequence} follows {plan.previous}, but the "
                f"bucket's last manifest is {head}"
            )

    def _store_segment(self, plan: Manifest, data: bytes | None) -> str:
        for version in self.store.versions_of(plan.segment_key):
            if version.delete_marker:
                continue
            fetched = self.store.get(plan.segment_key, version.version_id)
            if fetched is not None and digest(fetched.data) == plan.segment_sha256:
                log.info("archive.segment.found", source=plan.source, sequence=plan.sequence)
                return version.version_id  # uploaded before a crash: not again
            raise StoreError(f"{plan.segment_key} already holds other bytes than the planned segment")
        if data is None:
            lines = self.follower.read_range(
                plan.source, plan.log.dev, plan.log.ino, plan.log.start, plan.log.end
            )
            if lines is None:
                raise RangeLost(f"log bytes {plan.log} of {plan.source} can no longer be read")
            built = segments.build([line.raw for line in lines])
            if built.sha256 != plan.segment_sha256:
                raise RangeLost(f"log bytes {plan.log} of {plan.source} no longer hold the planned segment")
            data = built.data
        return self.store.put_locked(plan.segment_key, data, plan.retain_until)

    def _store_manifest(self, manifest: Manifest, raw: bytes) -> None:
        prefix = f"{layout.MANIFESTS}{manifest.source}/{manifest.sequence:010d}_"
        for key, versions in self.store.versions(prefix).items():
            for version in versions:
                if version.delete_marker:
                    continue
                fetched = self.store.get(key, version.version_id)
                if key == manifest.key and fetched is not None and fetched.data == raw:
                    return  # written before a crash
                raise StoreError(f"{key} already holds another manifest for sequence {manifest.sequence}")
        self.store.put_locked(manifest.key, raw, manifest.retain_until)

    def _head(self, source: str) -> Link | None:
        """The last manifest of ``source`` in the bucket (cached: this archiver is its only writer)."""
        if source not in self.heads:
            prefix = f"{layout.MANIFESTS}{source}/"
            versions = self.store.versions(prefix)
            names = [n for n in map(layout.parse_manifest_key, versions) if n is not None]
            head = None
            if names:
                last = max(names, key=lambda n: n.sequence)
                # its version (if someone wrote others over it or hid it, verify says so; the chain goes on
                # from the one a reader sees, else from the original)
                stored = sorted(
                    (v for v in versions[last.key] if not v.delete_marker), key=lambda v: not v.latest
                )
                fetched = self.store.get(last.key, stored[0].version_id) if stored else None
                if fetched is None:
                    raise StoreError(f"{last.key}: the last manifest of {source} cannot be read")
                try:
                    parse(fetched.data)
                except ManifestError as exc:
                    raise StoreError(
                        f"{last.key}: the last manifest of {source} is malformed: {exc}"
                    ) from None
                head = Link(last.sequence, last.key, digest(fetched.data))
            self.heads[source] = head
        return self.heads[source]

    def _prepare(self) -> None:
        """Create the bucket if it is missing and publish the public key (once per process)."""
        if self.prepared:
            return
        if self.store.ensure_bucket():
            log.info("archive.bucket.created", bucket=self.store.bucket)
        public = self.key.public_key()
        key = layout.public_key_key(signing.key_id(public))
        pem = signing.public_pem(public)
        existing = [v for v in self.store.versions_of(key) if not v.delete_marker]
        if not existing:
            self.store.put_locked(key, pem, self.store.retain_until())
            log.info("archive.key.published", key=key)
        self.prepared = True
