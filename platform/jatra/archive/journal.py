"""The write-ahead record of the segment being sealed, one file per source.

Before anything is uploaded, the archiver writes down everything the segment's manifest will say except
the version id S3 gives the upload: sequence, previous manifest, the log file's identity and exact byte
range, the segment's SHA-256 and size, the seal time and the retention. After a crash it reads the record
back and finishes the job: it rebuilds the same bytes from the same byte range (or finds them already
uploaded), writes the manifest if it is missing, moves the cursor, and only then deletes the record. So
a crash at any point loses nothing and stores nothing twice.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
from pathlib import Path

from jatra.archive.manifest import Manifest, canonical, parse


class Journal:
    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def _path(self, source: str) -> Path:
        return self.directory / f"{source}.json"

    def write(self, plan: Manifest) -> None:
        """Record ``plan`` (a manifest without version id or signature) durably: write, fsync, rename."""
        self.directory.mkdir(parents=True, exist_ok=True)
        path = self._path(plan.source)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        body = {**dataclasses.replace(plan, segment_version="", key_id="").body(), "signature": ""}
        with tmp.open("wb") as f:
            f.write(canonical(body))
            f.flush()
            os.fsync(f.fileno())
        tmp.replace(path)
        self._sync_dir()

    def pending(self) -> list[Manifest]:
        """The records left by an unfinished seal, by source."""
        if not self.directory.is_dir():
            return []
        return [parse(p.read_bytes()) for p in sorted(self.directory.glob("*.json"))]

    def done(self, source: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            self._path(source).unlink()
            self._sync_dir()

    def _sync_dir(self) -> None:
        fd = os.open(self.directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
