"""`jatra worker backup`: read the repository, export the age of its newest backups, take the one due.

A full backup when the repository has none (``JATRA_BACKUP_FIRST_DELAY_S`` after the worker starts, so a
fresh `jatra up` is not slowed by it) or when the newest full is ``JATRA_BACKUP_FULL_INTERVAL_S`` old; an
incremental one when the newest backup of any kind is ``JATRA_BACKUP_INCR_INTERVAL_S`` old. Between
backups, WAL archiving covers every commit (see :mod:`jatra.stack.pgbackrest`).
"""

from __future__ import annotations

import asyncio
import time

import structlog

from jatra.backup import repository
from jatra.backup.errors import BackupBusy
from jatra.backup.take import DURATION, LAST_SUCCESS, take_backup
from jatra.infra.resources import Resources
from jatra.settings import Settings

log = structlog.get_logger()

#: how long a due backup waits for another pgBackRest process holding the lock, before the next pass decides
BUSY_WAIT_S = 30.0
#: when this worker process started: the first full backup is due a little after it
STARTED = time.time()


def due(repo: repository.Repository, settings: Settings, now: float, started: float = STARTED) -> str | None:
    """The pgBackRest backup type due now (full or incr), or None."""
    full = repo.latest("full")
    if full is None:
        return "full" if now - started >= settings.backup_first_delay_s else None
    if now - full.stopped >= settings.backup_full_interval_s:
        return "full"
    newest = repo.latest()
    if newest is not None and now - newest.stopped >= settings.backup_incr_interval_s:
        return "incr"
    return None


def export(repo: repository.Repository, wal_uploaded: float | None) -> None:
    for kind in ("full", "incremental"):
        newest = repo.latest(kind)
        if newest is not None:
            LAST_SUCCESS.labels(kind).set(newest.stopped)
            DURATION.labels(kind).set(newest.duration_s)
    if wal_uploaded is not None:
        LAST_SUCCESS.labels("wal").set(wal_uploaded)


def _inspect(settings: Settings) -> repository.Repository:
    repo = repository.read(settings)
    export(repo, repository.newest_wal_upload(settings, repo))
    return repo


async def run_schedule(res: Resources) -> int:
    """One pass: export the repository's state, and take a backup if one is due. Returns backups taken."""
    settings = res.settings
    repo = await asyncio.to_thread(_inspect, settings)
    type_ = due(repo, settings, time.time())
    if type_ is None:
        return 0
    log.info("backup.due", type=type_, backups=len(repo.backups))
    try:
        # a short wait covers the archiving's pushes; not a whole backup, which may be the one due (an
        # operator's `jatra backup`): the next pass decides again from what the repository then holds
        await asyncio.to_thread(take_backup, settings, type_, wait_s=BUSY_WAIT_S)
    except BackupBusy:
        log.warning(  # a warning: rare (an operator's backup), and a backup not taken
            "backup.deferred",
            type=type_,
            reason="another backup is running",
            retry_in_s=settings.backup_check_interval_s,
        )
        return 0
    await asyncio.to_thread(_inspect, settings)
    return 1
