"""The pgBackRest repository in the backup bucket: run pgBackRest against it and read what it holds."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from jatra.backup.errors import BackupBusy, BackupError
from jatra.settings import Settings
from jatra.stack import pgbackrest
from jatra.stack.base import StackContext

#: the metric ``kind`` of each pgBackRest backup type: a differential and an incremental both copy only
#: what changed since an earlier backup
KINDS = {"full": "full", "diff": "incremental", "incr": "incremental"}


def stack_context(settings: Settings) -> StackContext:
    """The local stack's context, with the state directory resolved as `jatra up` resolves it."""
    return StackContext(Path(settings.state_dir).resolve(), settings.ports)


def run(config: Path, *args: str, timeout: float | None = None) -> str:
    """Run one pgBackRest command (as the user Postgres runs as); its console output, or BackupError."""
    argv = pgbackrest.command(config, *args)
    name = next((a for a in args if not a.startswith("-")), "?")
    try:
        result = subprocess.run(argv, capture_output=True, text=True, check=False, timeout=timeout)
    except subprocess.TimeoutExpired as exc:
        raise BackupError(name, -1, f"no answer after {timeout:.0f}s") from exc
    if result.returncode == pgbackrest.LOCK_BUSY:
        raise BackupBusy(name, result.returncode, result.stderr.strip() or result.stdout)
    if result.returncode != 0:
        # pgBackRest writes its errors to stderr; its progress (when asked for) to stdout
        raise BackupError(name, result.returncode, result.stderr.strip() or result.stdout)
    return result.stdout


def live_config(settings: Settings) -> Path:
    """The stack's config, rewritten from the settings (bucket, path and retention may have changed)."""
    return pgbackrest.write_config(settings, stack_context(settings))


@dataclass(frozen=True, slots=True)
class BackupSet:
    """One backup in the repository, as ``pgbackrest info`` describes it."""

    label: str
    type: str  # full, diff or incr
    started: float  # Unix time
    stopped: float
    database_bytes: int
    repository_bytes: int  # compressed, this backup's own files (a diff or incr references the rest)
    wal_start: str
    wal_stop: str
    prior: str | None

    @property
    def kind(self) -> str:
        return KINDS[self.type]

    @property
    def duration_s(self) -> float:
        return self.stopped - self.started

    def as_json(self) -> dict[str, Any]:
        return {
            "label": self.label,
            "type": self.type,
            "started": _iso(self.started),
            "stopped": _iso(self.stopped),
            "duration_s": round(self.duration_s, 1),
            "database_bytes": self.database_bytes,
            "repository_bytes": self.repository_bytes,
            "wal": [self.wal_start, self.wal_stop],
            "prior": self.prior,
        }


@dataclass(frozen=True, slots=True)
class Repository:
    """The stanza's state for the current database: its backups (oldest first), the range of archived WAL,
    and how many backups of an earlier database (before a re-initialisation or a major upgrade) remain."""

    status: str
    backups: list[BackupSet] = field(default_factory=list)
    archive_id: str | None = None
    wal_min: str | None = None
    wal_max: str | None = None
    earlier_backups: int = 0

    def latest(self, kind: str | None = None) -> BackupSet | None:
        found = [b for b in self.backups if kind is None or b.kind == kind]
        return found[-1] if found else None

    def find(self, label: str) -> BackupSet | None:
        return next((b for b in self.backups if b.label == label), None)


def read(settings: Settings, config: Path | None = None) -> Repository:
    """``pgbackrest info`` of the stanza; a stanza that does not exist yet is an empty repository."""
    out = run(config or live_config(settings), "--output=json", "info", timeout=120)
    stanzas: list[dict[str, Any]] = json.loads(out)
    return parse_info(stanzas[0]) if stanzas else Repository(status="no stanza")


def parse_info(stanza: dict[str, Any]) -> Repository:
    status = str(stanza.get("status", {}).get("message", "unknown"))
    # the repository's own status says more when the stanza's is "other" (a missing bucket, say)
    repo_status = [str(r.get("status", {}).get("message", "")) for r in stanza.get("repo", [])]
    if status == "other" and any(repo_status):
        status = "; ".join(m for m in repo_status if m)
    # the current database is the newest in the stanza's history; backups of earlier ones cannot be
    # restored with this database's WAL
    current = max((int(d["id"]) for d in stanza.get("db", [])), default=None)
    mine = [b for b in stanza.get("backup", []) if b["database"]["id"] == current and not b.get("error")]
    backups = [
        BackupSet(
            label=b["label"],
            type=b["type"],
            started=float(b["timestamp"]["start"]),
            stopped=float(b["timestamp"]["stop"]),
            database_bytes=int(b["info"]["size"]),
            repository_bytes=int(b["info"]["repository"]["delta"]),
            wal_start=b["archive"]["start"],
            wal_stop=b["archive"]["stop"],
            prior=b.get("prior"),
        )
        for b in mine
    ]
    backups.sort(key=lambda b: (b.stopped, b.label))
    archives: list[dict[str, Any]] = stanza.get("archive", [])
    archive = next((a for a in archives if a["database"]["id"] == current), {})
    return Repository(
        status=status,
        backups=backups,
        archive_id=archive.get("id"),
        wal_min=archive.get("min"),
        wal_max=archive.get("max"),
        earlier_backups=len(stanza.get("backup", [])) - len(mine),
    )


def newest_wal_upload(settings: Settings, repo: Repository) -> float | None:
    """When the newest archived WAL segment reached the bucket (Unix time), from the object's own date."""
    if repo.archive_id is None or repo.wal_max is None:
        return None
    from jatra.infra.s3 import s3_client  # noqa: PLC0415 - minio is only needed here

    path = settings.backup_repo_path.strip("/")
    prefix = f"{path}/archive/{pgbackrest.STANZA}/{repo.archive_id}/{repo.wal_max[:16]}/{repo.wal_max}"
    objects = s3_client(settings).list_objects(settings.backup_bucket, prefix=prefix.lstrip("/"))
    dates = [o.last_modified.timestamp() for o in objects if o.last_modified is not None]
    return max(dates) if dates else None


def _iso(ts: float) -> str:
    return dt.datetime.fromtimestamp(ts, dt.UTC).isoformat(timespec="seconds")
