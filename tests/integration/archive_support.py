"""Shared by the archive tests: real ECS log lines from Jatra's own logging, a bucket per test, and what the
bucket holds, read back through the manifests."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
import uuid
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from jatra.archive import layout, segments, signing
from jatra.archive.archiver import Archiver, Checkpoint
from jatra.archive.manifest import Link, Manifest, digest, parse
from jatra.archive.store import ArchiveStore
from jatra.archive.verify import BucketReader, Report, verify
from jatra.settings import Settings

ROOT = Path(__file__).resolve().parents[2]

# A real Jatra process's logging (structlog -> ECS JSON on stdout, trace context from real spans), as
# supervisord captures it: stdout appended to <log dir>/<process>.log. The events are 2 ms apart: on a fast
# machine sixty of them fell within a few milliseconds, so one segment's last event and a later segment's
# first shared a millisecond, and a time window over the one reached the other (a flaky window test).
EMITTER = """
import sys
import time
import structlog
from opentelemetry.sdk.trace import TracerProvider
from jatra.settings import Settings
from jatra.telemetry.logs import configure_logging

source, n, prefix = sys.argv[1], int(sys.argv[2]), sys.argv[3]
configure_logging(Settings(environment="test"), source)
tracer = TracerProvider().get_tracer("archive-test")
log = structlog.get_logger()
for i in range(n):
    with tracer.start_as_current_span("booking"):
        log.info("booking.created", booking_id=f"{prefix}-{i}", seats=2, note="x" * (i % 50))
    time.sleep(0.002)  # each event in a millisecond of its own: segments' time ranges never touch
"""


def emit(log_dir: Path, source: str, n: int, prefix: str) -> None:
    """``n`` booking.created events, each in a trace of its own, appended to ``source``'s log."""
    log_dir.mkdir(parents=True, exist_ok=True)
    with (log_dir / f"{source}.log").open("ab") as out:
        subprocess.run(
            [sys.executable, "-c", EMITTER, source, str(n), prefix],
            stdout=out,
            stderr=subprocess.PIPE,
            check=True,
            timeout=60,
        )


def file_lines(log_dir: Path, source: str) -> list[bytes]:
    """Every non-blank line of a source's log, rotated generations first."""
    names = [f"{source}.log.{n}" for n in range(9, 0, -1)] + [f"{source}.log"]
    lines: list[bytes] = []
    for path in (log_dir / name for name in names):
        if path.exists():
            lines += [raw for raw in path.read_bytes().split(b"\n") if raw.strip()]
    return lines


@dataclass
class Archive:
    """One test's archive: its own bucket, key, log directory and archiver state."""

    settings: Settings
    store: ArchiveStore
    key: Ed25519PrivateKey
    log_dir: Path
    state_dir: Path

    def archiver(self, checkpoint: Checkpoint | None = None) -> Archiver:
        return Archiver(self.settings, self.store, self.key, self.log_dir, self.state_dir, checkpoint)

    def env(self) -> dict[str, str]:
        """The environment that makes a `jatra` process use this archive (the test stack's S3)."""
        s = self.settings
        return {
            **os.environ,
            "JATRA_ARCHIVE_BUCKET": s.archive_bucket,
            "JATRA_ARCHIVE_RETENTION_DAYS": str(s.archive_retention_days),
            "JATRA_ARCHIVE_SEGMENT_BYTES": str(s.archive_segment_bytes),
            "JATRA_ARCHIVE_SEGMENT_AGE_S": str(s.archive_segment_age_s),
            "JATRA_ARCHIVE_SIGNING_KEY": s.archive_signing_key,
            "JATRA_LOG_DIR": str(self.log_dir),
        }

    def manifests(self, source: str) -> list[tuple[str, Manifest]]:
        found = []
        for key in self.store.keys(f"{layout.MANIFESTS}{source}/"):
            fetched = self.store.get(key)
            assert fetched is not None
            found.append((key, parse(fetched.data)))
        return found

    def archived(self, source: str) -> list[bytes]:
        """The lines of every segment of ``source``, in chain order, at the versions the manifests record."""
        lines: list[bytes] = []
        for _, m in self.manifests(source):
            fetched = self.store.get(m.segment_key, m.segment_version)
            assert fetched is not None, m.segment_key
            lines += segments.lines_of(fetched.data)
        return lines

    def verify(self) -> Report:
        return verify(BucketReader(self.store), public_key=self.key.public_key())

    def versions_per_key(self) -> dict[str, int]:
        return {key: len(v) for key, v in self.store.versions("").items()}


def new_archive(settings: Settings, tmp_path: Path, **overrides: object) -> Archive:
    pem = signing.generate_pem()
    values: dict[str, object] = {
        "archive_bucket": f"audit-test-{uuid.uuid4().hex[:12]}",
        "archive_retention_days": 1,  # locked for a day: long enough for any test, short for a test stack
        "archive_segment_bytes": 4096,
        "archive_segment_age_s": 3600.0,
        "archive_signing_key": pem,
        "log_dir": tmp_path / "log",
    }
    s = dataclasses.replace(settings, **{**values, **overrides})  # type: ignore[arg-type]
    return Archive(
        s, ArchiveStore.from_settings(s), signing.load_private(pem), tmp_path / "log", tmp_path / "state"
    )


def appended(
    last: Manifest, last_key: str, last_bytes: bytes, built: segments.SegmentBytes, version: str
) -> Manifest:
    """A forger's next manifest for ``built``: the sequence after ``last``, linked to it correctly."""
    seq = last.sequence + 1
    return dataclasses.replace(
        last,
        sequence=seq,
        first=built.first,
        last=built.last,
        events=1,
        segment_key=layout.segment_key(last.source, seq),
        segment_version=version,
        segment_sha256=built.sha256,
        segment_size=len(built.data),
        previous=Link(last.sequence, last_key, digest(last_bytes)),
    )
