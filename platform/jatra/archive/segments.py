"""The bytes of a segment: log lines as gzip'd NDJSON, the same bytes every time for the same lines.

A segment is rebuilt from the log file after a crash, and its SHA-256 was already promised in the
write-ahead record, so nothing in it may depend on when or where it is built: the gzip header carries no
file name and mtime 0, and the compression level is fixed.

A line is archived as written when it is a JSON object (Jatra's logging pipeline wrote it, personal data
already removed; nginx redacts its own). Any other line (Postgres's errors quote the row values they
refused, a raw traceback, a third-party server's text) is archived scrubbed of personal data, as the log
shipper indexes it: the archive is kept for years and nobody may read a phone number in it. So a
segment's bytes depend on the redaction's patterns too: a seal planned before an upgrade that changed
them is rebuilt to other bytes, found not to be the planned segment, and abandoned (``archive.plan.
abandoned``, an error) and its lines read again, nothing lost. Segments sealed before the scrubbing
existed (0c33c84) keep such lines as written: Object Lock forbids rewriting them.
"""

from __future__ import annotations

import datetime as dt
import gzip
import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass

import msgspec

from jatra.telemetry.redact import scrub

LEVEL = 6
_PREFIX = b'{"@timestamp":"'


def event_time(raw: bytes) -> dt.datetime | None:
    """The ``@timestamp`` of an ECS line, to the millisecond, in UTC (None for a line that has none: a
    traceback on stderr, say; it is archived all the same)."""
    try:
        if raw.startswith(_PREFIX):  # ecs-logging writes it first: no JSON parse needed
            text = raw[len(_PREFIX) : raw.index(b'"', len(_PREFIX))].decode()
        else:
            text = json.loads(raw)["@timestamp"]
        t = dt.datetime.fromisoformat(text)
    except (ValueError, KeyError, TypeError):
        return None
    if t.tzinfo is None:
        t = t.replace(tzinfo=dt.UTC)
    return t.astimezone(dt.UTC).replace(microsecond=t.microsecond // 1000 * 1000)


@dataclass(frozen=True, slots=True)
class SegmentBytes:
    data: bytes  # gzip'd NDJSON: what is uploaded
    sha256: str  # of ``data``
    events: int
    raw_bytes: int  # uncompressed
    first: dt.datetime | None  # the earliest and latest event time (None: no line had one)
    last: dt.datetime | None


class _Object(msgspec.Struct):
    """Any JSON object: decoding into it checks the syntax and skips every field."""


_OBJECT = msgspec.json.Decoder(_Object)


def archived(raw: bytes) -> bytes:
    """A log line as the archive keeps it: a JSON object as written; any other text scrubbed."""
    if raw.startswith(b"{"):
        try:
            _OBJECT.decode(raw)
        except msgspec.DecodeError:  # not JSON, or not an object (a ValidationError is one)
            pass
        else:
            return raw
    text = raw.decode("utf-8", errors="replace")
    cleaned = scrub(text)
    return raw if cleaned == text else cleaned.encode("utf-8", "surrogatepass")


def build(lines: Sequence[bytes]) -> SegmentBytes:
    """The segment of ``lines`` as read from a log file (each without its newline; see :func:`archived`)."""
    lines = [archived(line) for line in lines]
    ndjson = b"".join(line + b"\n" for line in lines)
    data = gzip.compress(ndjson, compresslevel=LEVEL, mtime=0)
    times = [t for t in map(event_time, lines) if t is not None]
    return SegmentBytes(
        data=data,
        sha256=hashlib.sha256(data).hexdigest(),
        events=len(lines),
        raw_bytes=len(ndjson),
        first=min(times, default=None),
        last=max(times, default=None),
    )


def lines_of(data: bytes) -> list[bytes]:
    """The log lines in a segment's bytes."""
    return gzip.decompress(data).split(b"\n")[:-1]
