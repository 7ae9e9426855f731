"""Documents Elasticsearch refused for good, set aside with its reason instead of dropped.

One JSON file per event, named by its ``_id`` (``<state>/logship/rejected/<id>.json``): a refusal seen
again after a restart rewrites the same file, so nothing is listed twice. Each holds the line as written,
where it came from, the data stream it was meant for and Elasticsearch's answer. Once the cause is fixed
(usually a mapping), these are what to index again; until then they are still in the log files and in
the auditors' archive.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jatra.infra.logfiles import Line
from jatra.logship.documents import Action


@dataclass(frozen=True, slots=True)
class Refusal:
    line: Line
    action: Action
    status: int
    error: dict[str, Any]


class SetAside:
    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def put(self, refusals: Iterable[Refusal]) -> int:
        """Write each refusal durably (file and directory synced) before the cursor may pass its line."""
        written = 0
        self.directory.mkdir(parents=True, exist_ok=True)
        for refusal in refusals:
            line = refusal.line
            body = {
                "at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
                "id": refusal.action.id,
                "index": refusal.action.index,
                "status": refusal.status,
                "error": refusal.error,
                "source": line.source,
                "file": {"dev": line.dev, "ino": line.ino, "offset": line.offset},
                "line": line.raw.decode("utf-8", errors="replace"),
            }
            path = self.directory / f"{refusal.action.id}.json"
            tmp = path.with_suffix(".tmp")
            with tmp.open("w") as f:
                json.dump(body, f, sort_keys=True)
                f.flush()
                os.fsync(f.fileno())
            tmp.replace(path)
            written += 1
        if written:
            directory = os.open(self.directory, os.O_RDONLY)
            try:
                os.fsync(directory)
            finally:
                os.close(directory)
        return written

    def __iter__(self) -> Iterator[dict[str, Any]]:
        """What is set aside, oldest first."""
        if not self.directory.is_dir():
            return iter(())
        paths = sorted(self.directory.glob("*.json"), key=lambda p: p.stat().st_mtime)
        return (json.loads(p.read_text()) for p in paths)

    def count(self) -> int:
        return len(list(self.directory.glob("*.json"))) if self.directory.is_dir() else 0
