"""`jatra audit export`: a time range of the archive in one file for an auditor, verifiable offline.

The file is a tar holding the events of the range (``events.ndjson``) and, byte for byte, what covers
them: every segment whose time range meets the range (the version its manifest recorded), those
manifests, and the published public keys. Per source it also holds the manifests just before and just
after those (without their segments), as bounds: the one before is proven by the first one's hash link,
the one after is signed and links to the last, and neither meets the range, so no segment of the range
can be left out at either end without verify saying so. ``jatra audit verify --export FILE --public-key
KEY`` checks it without the bucket: signatures, the chain within the range and to its bounds, every
segment's SHA-256, that every event in ``events.ndjson`` is in one of the segments, and that every event
of the range in those segments is in ``events.ndjson``.

What an export cannot prove offline: a source left out whole (``export.json`` lists the sources, and is
not signed), and, where a source's last manifest had no successor when it was exported, that nothing
sealed after it belongs to the range; verify warns of the latter.
"""

from __future__ import annotations

import datetime as dt
import io
import json
import tarfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from jatra.archive import layout, segments
from jatra.archive.manifest import from_iso, iso
from jatra.archive.search import Query, listed, read_segment
from jatra.archive.store import ArchiveStore, Fetched, Version

EVENTS = "events.ndjson"
ABOUT = "export.json"
README = """Jatra audit log export

events.ndjson   the log events of the range, one ECS JSON document a line, oldest first
segments/       the archived segments that hold them (gzip'd NDJSON), exactly as stored
manifests/      the signed manifests of those segments (canonical JSON, Ed25519, hash-chained per source),
                and per source the manifests just before and after them (bounds: no segment of the range
                is left out at either end)
keys/           the public keys published in the archive bucket
export.json     what was exported, from where, and when

Verify it offline, with the public key you hold (not only the one in keys/):
    jatra audit verify --export THIS_FILE --public-key KEY.pem
By hand: each segment's SHA-256 equals its manifest's segment.sha256; each manifest's previous.sha256
equals the SHA-256 of the previous manifest's bytes; the Ed25519 signature (base64) covers the canonical
JSON of the manifest without its "signature" field.
"""


@dataclass(frozen=True, slots=True)
class Exported:
    events: int
    segments: int
    warnings: list[str]


def export(
    store: ArchiveStore,
    out: Path,
    since: dt.datetime | None,
    until: dt.datetime | None,
    sources: Iterable[str] | None = None,
) -> Exported:
    query = Query(since=since, until=until)
    events: list[bytes] = []
    warnings: list[str] = []
    tmp = out.with_name(out.name + ".part")
    names, bounds = _covered(listed(store, sources), since, until)
    with tarfile.open(tmp, "w") as tar:
        for key, versions in sorted(store.versions(layout.KEYS).items()):
            for version in versions:
                if not version.delete_marker and (fetched := store.get(key, version.version_id)):
                    _add(tar, key, fetched.data)
        for name in names:
            got = read_segment(store, name)
            if got.warning:
                warnings.append(got.warning)
            _add(tar, name.key, got.manifest_raw)
            if got.data:
                _add(tar, got.manifest.segment_key, got.data)
                events += [raw for raw in segments.lines_of(got.data) if query.matches(raw)]
        for bound in bounds:
            if (fetched := store.get(bound.key)) is not None:
                _add(tar, bound.key, fetched.data)
        epoch = dt.datetime.min.replace(tzinfo=dt.UTC)
        events.sort(key=lambda raw: segments.event_time(raw) or epoch)
        _add(tar, EVENTS, b"".join(raw + b"\n" for raw in events))
        about = {
            "bucket": store.bucket,
            "since": None if since is None else iso(since),
            "until": None if until is None else iso(until),
            "sources": sorted({n.source for n in names}),
            "events": len(events),
            "segments": len(names),
            "exported_at": iso(dt.datetime.now(dt.UTC)),
            # to the microsecond, as asked: verify finds every event of this window in events.ndjson
            "window": {
                "since": None if since is None else since.isoformat(),
                "until": None if until is None else until.isoformat(),
            },
            "bounds": _bound_seqs(bounds),
        }
        _add(tar, ABOUT, json.dumps(about, indent=2).encode() + b"\n")
        _add(tar, "README.txt", README.encode())
    tmp.replace(out)
    return Exported(len(events), len(names), warnings)


def _covered(
    names: list[layout.ManifestName], since: dt.datetime | None, until: dt.datetime | None
) -> tuple[list[layout.ManifestName], list[layout.ManifestName]]:
    """From one listing of the manifests: per source, every one from the first to the last that meets the
    window (a run without holes, so the chain holds), and the ones just before and after that run (the
    bounds; from the same listing, so one sealed while the export runs is neither)."""
    by_source: dict[str, list[layout.ManifestName]] = {}
    for name in names:
        by_source.setdefault(name.source, []).append(name)
    covered: list[layout.ManifestName] = []
    bounds: list[layout.ManifestName] = []
    for _, found in sorted(by_source.items()):
        meets = [n.sequence for n in found if n.overlaps(since, until)]
        if not meets:
            continue
        lo, hi = min(meets), max(meets)
        covered += [n for n in found if lo <= n.sequence <= hi]
        bounds += [n for n in found if n.sequence in (lo - 1, hi + 1)]
    return covered, bounds


def _bound_seqs(bounds: list[layout.ManifestName]) -> dict[str, list[int]]:
    seqs: dict[str, list[int]] = {}
    for b in bounds:
        seqs.setdefault(b.source, []).append(b.sequence)
    return {source: sorted(found) for source, found in seqs.items()}


def _add(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mode = 0o444
    tar.addfile(info, io.BytesIO(data))


class ExportReader:
    """An export file, read as verify reads the bucket (one copy of each object, no versions)."""

    versioned = False
    complete = False

    def __init__(self, path: Path) -> None:
        self.files: dict[str, bytes] = {}
        with tarfile.open(path, "r") as tar:
            for member in tar.getmembers():
                f = tar.extractfile(member) if member.isfile() else None
                if f is not None:
                    self.files[member.name] = f.read()

    def sources(self) -> list[str]:
        return sorted({s for s in map(layout.source_of, self.files) if s is not None})

    def versions(self, prefix: str) -> dict[str, list[Version]]:
        return {
            key: [Version(key, "", latest=True, delete_marker=False, size=len(data))]
            for key, data in self.files.items()
            if key.startswith(prefix)
        }

    def fetch(self, key: str, version_id: str | None) -> Fetched | None:
        data = self.files.get(key)
        return None if data is None else Fetched(data, "", None, None, legal_hold=False)

    @property
    def window(self) -> tuple[dt.datetime | None, dt.datetime | None]:
        """The range the export was made for, as ``export.json`` records it (not signed: verify takes the
        auditor's ends first). To the microsecond; in an export made before that was recorded, its
        millisecond ends, the start a millisecond later (the true one may be up to that much later); with
        no ``export.json`` at all, no limit (every event of the segments is then expected)."""
        about = json.loads(self.files.get(ABOUT, b"{}"))
        window = about.get("window")
        if isinstance(window, dict):
            since, until = window.get("since"), window.get("until")
            return (None if since is None else from_iso(since), None if until is None else from_iso(until))
        since, until = about.get("since"), about.get("until")
        start = None if since is None else from_iso(since) + dt.timedelta(milliseconds=1)
        return (start, None if until is None else from_iso(until))

    def events_left_out(self, since: dt.datetime | None, until: dt.datetime | None) -> int:
        """Events of the window that an exported segment holds and ``events.ndjson`` does not (0 for an
        honest export)."""
        query = Query(since=since, until=until)
        listed = set(self.files.get(EVENTS, b"").split(b"\n"))
        return sum(1 for raw in self._segment_lines() if query.matches(raw) and raw not in listed)

    def events_not_in_segments(self) -> int:
        """Lines of ``events.ndjson`` that no exported segment holds (0 for an honest export)."""
        held = set(self._segment_lines())
        return sum(1 for raw in self.files.get(EVENTS, b"").split(b"\n")[:-1] if raw not in held)

    def _segment_lines(self) -> Iterator[bytes]:
        for key, data in self.files.items():
            if layout.parse_segment_key(key):
                yield from segments.lines_of(data)
