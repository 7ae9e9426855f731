"""`jatra backup list`: what the repository holds, and what its retention keeps."""

from __future__ import annotations

from typing import Any

from jatra.backup.repository import Repository
from jatra.settings import Settings
from jatra.stack import pgbackrest


def as_json(settings: Settings, repo: Repository) -> dict[str, Any]:
    return {
        "repository": location(settings),
        "stanza": pgbackrest.STANZA,
        "status": repo.status,
        "retention": retention(settings),
        "wal": {"archive": repo.archive_id, "oldest": repo.wal_min, "newest": repo.wal_max},
        "backups": [b.as_json() for b in repo.backups],
        "earlier_database_backups": repo.earlier_backups,
    }


def location(settings: Settings) -> str:
    return f"s3://{settings.backup_bucket}{settings.backup_repo_path}"


def retention(settings: Settings) -> str:
    return (
        f"keeps {settings.backup_retention_full} full backups, the differential and incremental backups "
        "that depend on them, and the WAL from the oldest one on (point-in-time recovery to any moment since)"
    )


def render(settings: Settings, repo: Repository) -> str:
    lines = [
        f"repository  {location(settings)}  (stanza {pgbackrest.STANZA}, status: {repo.status})",
        f"retention   {retention(settings)}",
        f"WAL         {repo.wal_min or '-'} .. {repo.wal_max or '-'}  (archive {repo.archive_id or '-'})",
    ]
    if repo.earlier_backups:
        lines.append(
            f"({repo.earlier_backups} backups of an earlier database, from before a re-initialisation or an "
            "upgrade, stay until retention expires them)"
        )
    if not repo.backups:
        lines.append("no backups yet: take one with `jatra backup --type full`")
        return "\n".join(lines)
    lines.append(
        f"{'label':32} {'type':5} {'stopped (UTC)':26} {'took':>6} {'database':>10} {'stored':>10}  prior"
    )
    for b in repo.backups:
        stopped = b.as_json()["stopped"]
        sizes = f"{_size(b.database_bytes):>10} {_size(b.repository_bytes):>10}"
        lines.append(f"{b.label:32} {b.type:5} {stopped:26} {b.duration_s:>5.0f}s {sizes}  {b.prior or '-'}")
    return "\n".join(lines)


def _size(n: float) -> str:
    units = ["B", "KiB", "MiB", "GiB"]
    while n >= 1024 and len(units) > 1:
        n /= 1024
        units.pop(0)
    return f"{n:.1f}{units[0]}"
