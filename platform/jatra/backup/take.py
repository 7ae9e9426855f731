"""Take one backup: the stanza first if it is missing, then pgBackRest, then what the repository says."""

from __future__ import annotations

import re
import time

import stamina
import structlog
from opentelemetry import trace
from opentelemetry.trace import Status, StatusCode

from jatra.backup import repository
from jatra.backup.errors import BackupBusy, BackupError
from jatra.settings import Settings
from jatra.stack import pgbackrest
from jatra.stack.procs import StackError
from jatra.telemetry import catalogue as c
from jatra.telemetry.metrics import gauge

log = structlog.get_logger()
tracer = trace.get_tracer("jatra.backup")

LAST_SUCCESS = gauge(c.BACKUP_LAST_SUCCESS)
DURATION = gauge(c.BACKUP_DURATION)
TYPES = ("full", "diff", "incr")
_LABEL = re.compile(r"new backup label = (\S+)")
#: how long a backup waits, by default, for another one holding the stanza's lock to finish
BUSY_WAIT_S = 900.0


def take_backup(settings: Settings, type_: str, *, wait_s: float = BUSY_WAIT_S) -> repository.BackupSet:
    """A ``type_`` backup (full, diff or incr; pgBackRest makes the first one full); the set it made.

    Retention applies right after: pgBackRest expires the full backups beyond
    ``JATRA_BACKUP_RETENTION_FULL`` and what only they needed. While another backup holds the stanza's
    lock (pgBackRest runs one at a time), this one waits up to ``wait_s`` for it to finish, then raises
    BackupBusy.
    """
    if type_ not in TYPES:
        raise ValueError(f"backup type must be one of {', '.join(TYPES)}, not {type_!r}")
    t0 = time.monotonic()
    with tracer.start_as_current_span("backup.take", attributes={"jatra.backup.type": type_}) as span:
        log.info("backup.started", type=type_, bucket=settings.backup_bucket)
        try:
            made, kept = _when_free(settings, type_, wait_s)
        except BackupBusy as exc:  # not taken; the caller says what that means (the worker defers it)
            span.set_status(Status(StatusCode.ERROR, "another backup is running"))
            span.record_exception(exc)
            log.warning("backup.busy", type=type_, waited_s=round(time.monotonic() - t0, 1), limit_s=wait_s)
            raise
        except BackupError as exc:
            _failed(span, type_, exc, t0)
            raise
        LAST_SUCCESS.labels(made.kind).set(made.stopped)
        DURATION.labels(made.kind).set(made.duration_s)
        span.set_attributes(
            {
                "jatra.backup.label": made.label,
                "jatra.backup.kind": made.kind,
                "jatra.backup.database_bytes": made.database_bytes,
                "jatra.backup.repository_bytes": made.repository_bytes,
            }
        )
        log.info(
            "backup.completed",
            label=made.label,
            type=made.type,
            kind=made.kind,
            duration_s=round(made.duration_s, 1),
            command_s=round(time.monotonic() - t0, 2),
            database_bytes=made.database_bytes,
            repository_bytes=made.repository_bytes,
            backups_kept=kept,
        )
        return made


def _when_free(settings: Settings, type_: str, wait_s: float) -> tuple[repository.BackupSet, int]:
    """The backup, once no other holds the stanza's lock (pgBackRest runs one at a time); up to wait_s."""
    if wait_s <= 0:
        return _backup(settings, type_)
    t0 = time.monotonic()

    def attempt() -> tuple[repository.BackupSet, int]:
        try:
            return _backup(settings, type_)
        except BackupBusy:
            log.info("backup.waiting", type=type_, waited_s=round(time.monotonic() - t0, 1), limit_s=wait_s)
            raise

    retry = stamina.retry(on=BackupBusy, attempts=None, timeout=wait_s, wait_initial=1.0, wait_max=10.0)
    return retry(attempt)()


def _backup(settings: Settings, type_: str) -> tuple[repository.BackupSet, int]:
    """Run the backup (the stanza first, if missing); the set it made and how many the repository keeps."""
    ctx = repository.stack_context(settings)
    try:
        # stanza-create takes the archive's lock and the backup's: the archive-push's (a second) is waited
        # for there, a backup's is _when_free's to wait for
        pgbackrest.ensure_stanza(settings, ctx, wait_for_backup=False)
    except StackError as exc:
        if isinstance(exc, pgbackrest.LockBusy) and exc.lock == "backup":
            raise BackupBusy("stanza-create", pgbackrest.LOCK_BUSY, str(exc)) from exc
        # the archive's lock busy for a whole minute is a failure, as any other
        raise BackupError("stanza-create", 1, str(exc)) from exc
    config = pgbackrest.stack_files(ctx).config
    out = repository.run(
        config,
        f"--type={type_}",
        f"--archive-timeout={pgbackrest.BACKUP_WAL_WAIT_S}",
        # this process's retention, whatever another process (the backup worker reading the repository) has
        # written into the shared config file meanwhile: the command line wins over the file
        f"--repo1-retention-full={settings.backup_retention_full}",
        "--log-level-console=info",
        "backup",
    )
    found = _LABEL.search(out)
    repo = repository.read(settings, config)
    made = repo.find(found.group(1)) if found else None
    if made is None:
        raise BackupError("backup", 0, f"no new backup set in the repository after:\n{out}")
    return made, len(repo.backups)


def _failed(span: trace.Span, type_: str, exc: BackupError, t0: float) -> None:
    span.set_status(Status(StatusCode.ERROR, str(exc)))
    span.record_exception(exc)
    log.error("backup.failed", type=type_, error=str(exc), duration_s=round(time.monotonic() - t0, 2))
