"""pgBackRest in the local stack: its files in the state directory, its S3 repository, WAL archiving.

Postgres archives every finished WAL segment with ``pgbackrest archive-push`` into the backup bucket of the
local S3 server, over HTTPS (pgBackRest's S3 client speaks nothing else) with the stack's self-signed
certificate. Until the stanza exists, the archive command succeeds without pushing: WAL from before the
first backup is of no use to a restore, and a Postgres whose archive command failed would keep every
segment and fill its disk. ``ensure_stanza`` (run by `jatra up` and before every backup) creates the
stanza and only then turns the push on, so every segment from the first backup onwards is in the bucket.

Layout in the state directory (owned by the ``postgres`` user when we are root, as Postgres runs it):
``conf/pgbackrest/`` the config (mode 0600: it holds the S3 secret), a copy of the CA certificate and the
switch file; ``data/pgbackrest/`` the lock and spool directories; ``log/pgbackrest/`` pgBackRest's logs.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import socket
import subprocess
from dataclasses import dataclass
from pathlib import Path

import stamina
import structlog

from jatra.infra.secrets import LOCAL_S3_ACCESS_KEY, s3_secret_key
from jatra.settings import Settings
from jatra.stack.base import StackContext
from jatra.stack.objectstore import tls_paths
from jatra.stack.procs import MissingBinaryError, StackError, as_user, chown_tree, find_binary

log = structlog.get_logger()

#: the stanza: pgBackRest's name for the one Postgres cluster it backs up
STANZA = "jatra"
#: Postgres switches to a new WAL segment after this many seconds if anything was written: with light
#: traffic it bounds what a restore can lose (the RPO) to about this plus the time of one upload
ARCHIVE_TIMEOUT_S = 60
#: the user Postgres (and so every pgBackRest command that touches its files) runs as when we are root
PG_USER = "postgres"
#: region in the S3 signature; SeaweedFS and MinIO accept any, pgBackRest requires one
S3_REGION = "us-east-1"
#: seconds one archive command waits for the background push of its segment (pgBackRest's default is 60):
#: with S3 down, Postgres's shutdown makes three attempts at the first pending segment before it gives up
ARCHIVE_PUSH_WAIT_S = 10
#: ...but a backup waits this long for the WAL it needs to reach the repository
BACKUP_WAL_WAIT_S = 300
#: pgBackRest's exit code when the repository's stanza belongs to another database (system identifier)
STANZA_MISMATCH = 28
#: ...and when another pgBackRest process holds the lock it needs
LOCK_BUSY = 50
#: WAL waiting in the spool beyond this is dropped rather than filling the disk under Postgres (pgBackRest
#: then logs it, and PITR is interrupted until the next backup): losing a backup beats losing the database
ARCHIVE_QUEUE_MAX = "4GiB"


@dataclass(frozen=True, slots=True)
class Files:
    """Where pgBackRest's files for one cluster live."""

    config: Path
    ca_file: Path
    lock: Path
    spool: Path
    log: Path

    def dirs(self) -> list[Path]:
        return [self.config.parent, self.lock, self.spool, self.log]


def stack_files(ctx: StackContext) -> Files:
    conf = ctx.conf("pgbackrest")
    data = ctx.data("pgbackrest")
    return Files(
        config=conf / "pgbackrest.conf",
        ca_file=conf / "s3-ca.crt",
        lock=data / "lock",
        spool=data / "spool",
        log=ctx.state_dir / "log" / "pgbackrest",
    )


def archive_switch(ctx: StackContext) -> Path:
    """While this file exists, the archive command pushes WAL and fails (so Postgres retries) until it can."""
    return ctx.conf("pgbackrest") / "wal-archiving-on"


def binary() -> str:
    return find_binary(["pgbackrest", "/usr/bin/pgbackrest"], "pgbackrest")


def archive_command(ctx: StackContext) -> str:
    """The shell command Postgres runs for each finished WAL segment (``%p``: its path)."""
    try:
        program = binary()
    except MissingBinaryError:
        program = "pgbackrest"  # not installed: the switch cannot be on either, so nothing runs it
    config = stack_files(ctx).config
    push = f"{shlex.quote(program)} --config={shlex.quote(str(config))} --stanza={STANZA} archive-push %p"
    return f"test ! -e {shlex.quote(str(archive_switch(ctx)))} || {push}"


def postgres_options(ctx: StackContext) -> list[str]:
    """Command-line settings of the live Postgres: they apply on its next start, whatever its config file."""
    return [
        "-c", "archive_mode=on",
        "-c", f"archive_command={archive_command(ctx)}",
        "-c", f"archive_timeout={ARCHIVE_TIMEOUT_S}",
    ]  # fmt: skip


def prepare_dirs(ctx: StackContext, files: Files | None = None) -> Files:
    files = files or stack_files(ctx)
    for path in files.dirs():
        path.mkdir(parents=True, exist_ok=True)
        chown_tree(path, PG_USER)
    return files


@dataclass(frozen=True, slots=True)
class Cluster:
    """The Postgres cluster a config points pgBackRest at, and where pgBackRest keeps its own files."""

    data: Path
    port: int
    files: Files


def stack_cluster(ctx: StackContext) -> Cluster:
    return Cluster(data=ctx.data("postgres"), port=ctx.ports.postgres, files=stack_files(ctx))


def render_config(settings: Settings, ctx: StackContext, cluster: Cluster) -> str:
    """pgbackrest.conf: the S3 repository of ``settings`` and the ``cluster``."""
    files = cluster.files
    return f"""# generated by jatra (jatra.stack.pgbackrest); rewritten before every backup, do not edit
[global]
repo1-type=s3
repo1-s3-endpoint=localhost
repo1-storage-port={ctx.ports.s3_tls}
repo1-storage-ca-file={files.ca_file}
repo1-s3-uri-style=path
repo1-s3-region={S3_REGION}
repo1-s3-bucket={settings.backup_bucket}
repo1-s3-key={LOCAL_S3_ACCESS_KEY}
repo1-s3-key-secret={s3_secret_key(settings)}
repo1-path={settings.backup_repo_path}
repo1-retention-full-type=count
repo1-retention-full={settings.backup_retention_full}
compress-type=lz4
repo1-bundle=y
process-max=2
start-fast=y
archive-async=y
archive-timeout={ARCHIVE_PUSH_WAIT_S}
archive-push-queue-max={ARCHIVE_QUEUE_MAX}
lock-path={files.lock}
spool-path={files.spool}
log-path={files.log}
log-level-console=warn
log-level-file=info

[{STANZA}]
pg1-path={cluster.data}
pg1-port={cluster.port}
pg1-socket-path={cluster.data}
pg1-user={PG_USER}
"""


def write_config(settings: Settings, ctx: StackContext, cluster: Cluster | None = None) -> Path:
    """Write the config for ``cluster`` (default: the stack's Postgres) atomically; returns its path."""
    cluster = cluster or stack_cluster(ctx)
    _check_localhost()
    files = prepare_dirs(ctx, cluster.files)
    cert, _ = tls_paths(ctx)
    if not cert.exists():
        raise StackError(f"the local S3 server's certificate {cert} is missing: start the stack (jatra up)")
    shutil.copyfile(cert, files.ca_file)  # a copy the postgres user can read, wherever secrets/ is
    tmp = files.config.with_suffix(f".{os.getpid()}.tmp")
    tmp.write_text(render_config(settings, ctx, cluster))
    tmp.chmod(0o600)
    chown_tree(files.config.parent, PG_USER)
    tmp.replace(files.config)  # the archive command may read it at any moment
    return files.config


def _check_localhost() -> None:
    # The certificate names `localhost` (pgBackRest checks DNS names only, not IP addresses), and S3 listens
    # on 127.0.0.1 only: `localhost` must resolve there.
    addresses = {info[4][0] for info in socket.getaddrinfo("localhost", None, socket.AF_UNSPEC)}
    if "127.0.0.1" not in addresses:
        raise StackError(f"`localhost` resolves to {sorted(addresses)}, not 127.0.0.1 (add it to /etc/hosts)")


def command(config: Path, *args: str) -> list[str]:
    """argv of one pgBackRest command, as the user Postgres runs as (it reads and writes its files)."""
    return as_user(PG_USER, [binary(), f"--config={config}", f"--stanza={STANZA}", *args])


def ensure_stanza(settings: Settings, ctx: StackContext, wait_for_backup: bool = True) -> None:
    """Create the bucket and the stanza if they are missing, then turn WAL archiving on. Idempotent.

    While another pgBackRest process holds a lock stanza-create needs (it takes the archive's and the
    backup's), wait up to ``BUSY_WAIT_S``, then raise LockBusy; with ``wait_for_backup=False``, raise it
    at once when a backup holds the backup lock.
    """
    from jatra.infra.s3 import s3_client  # noqa: PLC0415 - minio is only needed here

    client = s3_client(settings)
    if not client.bucket_exists(settings.backup_bucket):
        client.make_bucket(settings.backup_bucket)
    config = write_config(settings, ctx)
    result = _run(config, "stanza-create", wait_for_backup)
    if result.returncode == STANZA_MISMATCH:
        # the repository knows an earlier database under this stanza: the local one was re-initialised (or
        # upgraded). Record the new one; the earlier backups stay, and expire with retention.
        log.warning("backup.stanza.upgrade", stanza=STANZA, reason=_tail(result))
        result = _run(config, "stanza-upgrade", wait_for_backup)
    if result.returncode != 0:
        raise StackError(f"pgbackrest stanza-create failed: {_tail(result)}")
    switch = archive_switch(ctx)
    if not switch.exists():
        switch.write_text(
            "pgBackRest has a stanza: Postgres pushes every WAL segment to it (see pgbackrest.py)\n"
        )
        chown_tree(switch.parent, PG_USER)


class LockBusy(StackError):
    """Another pgBackRest process holds a lock of the stanza: ``lock`` says which, ``archive`` (the
    asynchronous archive-push, a second at a time) or ``backup`` (a backup, minutes)."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        found = _LOCK_FILE.search(message)
        self.lock = found.group(1) if found else "?"


#: how long a command waits for a lock another pgBackRest process holds
BUSY_WAIT_S = 60.0
#: pgBackRest names the lock it could not take: '<lock-path>/<stanza>-<archive|backup>.lock'
_LOCK_FILE = re.compile(r"-(archive|backup)\.lock'")


def _run_once(argv: list[str]) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(argv, capture_output=True, text=True, check=False, timeout=120)
    if result.returncode == LOCK_BUSY:
        raise LockBusy(_tail(result))
    return result


def _run(config: Path, name: str, wait_for_backup: bool) -> subprocess.CompletedProcess[str]:
    """Run one command; while another pgBackRest process holds a lock it needs (exit code 50, usually the
    background archive-push of a WAL segment, which takes a second), try again, for up to ``BUSY_WAIT_S``.
    ``wait_for_backup=False``: a backup holding the backup lock is raised at once (LockBusy, lock
    ``backup``), for a caller that decides what to do about a backup running."""

    def busy(exc: Exception) -> bool:
        return isinstance(exc, LockBusy) and (wait_for_backup or exc.lock != "backup")

    retry = stamina.retry(on=busy, attempts=None, timeout=BUSY_WAIT_S, wait_initial=0.2, wait_max=2)
    try:
        return retry(_run_once)(command(config, name))
    except LockBusy as exc:
        if not busy(exc):
            raise
        raise LockBusy(f"pgbackrest {name}: the lock stayed busy for {BUSY_WAIT_S:.0f}s: {exc}") from exc


def _tail(result: subprocess.CompletedProcess[str]) -> str:
    return (result.stderr or result.stdout).strip()[-2000:]
