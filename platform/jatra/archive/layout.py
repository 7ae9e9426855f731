"""Where everything lives in the archive bucket. Keys sort in sequence order within a source, and a
manifest's key carries its time range, so a listing alone says which segments a time window needs.

    keys/<key id>.pem                                         public keys that sign the manifests
    segments/<source>/<sequence:010d>.ndjson.gz               the log lines, gzip'd NDJSON
    manifests/<source>/<sequence:010d>_<first>_<last>.json    the signed manifest of that segment

``first`` and ``last`` are the segment's first and last event times, UTC, ``20261123T141744213Z``.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

SEGMENTS = "segments/"
MANIFESTS = "manifests/"
KEYS = "keys/"

_COMPACT = "%Y%m%dT%H%M%S"
_MANIFEST = re.compile(
    r"^manifests/(?P<source>[^/]+)/(?P<seq>\d{10})_(?P<first>\d{8}T\d{9}Z)_(?P<last>\d{8}T\d{9}Z)\.json$"
)
_SEGMENT = re.compile(r"^segments/(?P<source>[^/]+)/(?P<seq>\d{10})\.ndjson\.gz$")
_SOURCE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


def check_source(source: str) -> str:
    if not _SOURCE.match(source):
        raise ValueError(f"not an archivable source name: {source!r}")
    return source


def compact(t: dt.datetime) -> str:
    t = t.astimezone(dt.UTC)
    return f"{t.strftime(_COMPACT)}{t.microsecond // 1000:03d}Z"


def from_compact(text: str) -> dt.datetime:
    return dt.datetime.strptime(text[:15], _COMPACT).replace(
        microsecond=int(text[15:18]) * 1000, tzinfo=dt.UTC
    )


def segment_key(source: str, sequence: int) -> str:
    return f"{SEGMENTS}{check_source(source)}/{sequence:010d}.ndjson.gz"


def manifest_key(source: str, sequence: int, first: dt.datetime, last: dt.datetime) -> str:
    return f"{MANIFESTS}{check_source(source)}/{sequence:010d}_{compact(first)}_{compact(last)}.json"


def public_key_key(key_id: str) -> str:
    return f"{KEYS}{key_id}.pem"


@dataclass(frozen=True, slots=True)
class ManifestName:
    """What a manifest's key says (a claim: verify checks it against the manifest's content)."""

    key: str
    source: str
    sequence: int
    first: dt.datetime
    last: dt.datetime

    def overlaps(self, since: dt.datetime | None, until: dt.datetime | None) -> bool:
        return (since is None or self.last >= since) and (until is None or self.first <= until)


def parse_manifest_key(key: str) -> ManifestName | None:
    m = _MANIFEST.match(key)
    if m is None:
        return None
    return ManifestName(key, m["source"], int(m["seq"]), from_compact(m["first"]), from_compact(m["last"]))


def parse_segment_key(key: str) -> tuple[str, int] | None:
    m = _SEGMENT.match(key)
    return None if m is None else (m["source"], int(m["seq"]))


def source_of(key: str) -> str | None:
    """The source a ``segments/`` or ``manifests/`` key belongs to."""
    parts = key.split("/")
    return parts[1] if len(parts) >= 3 and parts[0] + "/" in {SEGMENTS, MANIFESTS} else None
