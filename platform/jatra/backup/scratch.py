"""A throwaway Postgres restored from the repository: its own directory, config, loopback port and process.

It never writes to the repository: its config has its own lock, spool and log directories, the restore
turns ``archive_mode`` off, and it runs with ``archive_mode=off`` on the command line as well.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import shutil
import signal
import time
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from jatra.backup import repository
from jatra.backup.errors import DrillFailed
from jatra.settings import Settings
from jatra.stack import pgbackrest
from jatra.stack.procs import (
    as_user,
    chown_tree,
    free_port,
    log_tail,
    pid_alive,
    pids_naming,
    spawn,
    stop_pid,
)
from jatra.stack.stores import pg_binary


class ScratchCluster:
    """STATE_DIR/data/drill/<id>: pgdata, pgbackrest.conf with its own lock/spool/log, postgres.log."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.ctx = repository.stack_context(settings)
        stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S")
        self.root = self.ctx.data("drill") / f"{stamp}-{os.getpid()}"
        self.pgdata = self.root / "pgdata"
        self.port = free_port()
        self.files = pgbackrest.Files(
            config=self.root / "pgbackrest.conf",
            ca_file=self.root / "s3-ca.crt",
            lock=self.root / "lock",
            spool=self.root / "spool",
            log=self.root / "log",
        )
        self.pid: int | None = None

    @property
    def log(self) -> Path:
        return self.root / "postgres.log"

    def url(self) -> str:
        """The live database's admin URL, pointed at this copy."""
        url = make_url(self.settings.db_admin_url).set(host="127.0.0.1", port=self.port)
        return url.render_as_string(hide_password=False)

    def write_config(self) -> Path:
        cluster = pgbackrest.Cluster(data=self.pgdata, port=self.port, files=self.files)
        self.root.mkdir(parents=True, exist_ok=True)
        return pgbackrest.write_config(self.settings, self.ctx, cluster)

    def restore(self, label: str, restore_point: str) -> None:
        """Restore backup ``label`` and set recovery to replay WAL up to ``restore_point``, then promote."""
        config = self.write_config()
        self.pgdata.mkdir(mode=0o700)
        chown_tree(self.root, pgbackrest.PG_USER)
        repository.run(
            config,
            f"--set={label}",
            "--type=name",
            f"--target={restore_point}",
            "--target-action=promote",
            "--archive-mode=off",
            "restore",
        )

    def start(self) -> None:
        argv = [
            pg_binary("postgres"), "-D", str(self.pgdata), "-h", "127.0.0.1", "-p", str(self.port),
            "-c", "unix_socket_directories=", "-c", "archive_mode=off", "-c", "archive_command=",
        ]  # fmt: skip
        self.pid = spawn(as_user(pgbackrest.PG_USER, argv), self.log)

    async def wait_promoted(self, limit_s: float) -> float:
        """Wait until recovery reached its target and the copy accepts writes; returns the seconds it took."""
        engine = create_async_engine(self.url(), poolclass=NullPool, connect_args={"timeout": 2})
        t0 = time.monotonic()
        last = "no answer"
        try:
            while time.monotonic() - t0 < limit_s:
                if not pid_alive(self.pid):
                    raise DrillFailed(f"the restored copy's Postgres exited{log_tail(self.log, 25)}")
                try:
                    async with engine.connect() as conn:
                        if not await conn.scalar(text("SELECT pg_is_in_recovery()")):
                            return time.monotonic() - t0
                        last = "still in recovery"
                # refused, then "the database system is starting up" (asyncpg's own error) until consistent
                except Exception as exc:
                    last = f"{type(exc).__name__}: {exc}"
                await asyncio.sleep(0.1)
        finally:
            await engine.dispose()
        raise DrillFailed(
            f"the restored copy was not promoted within {limit_s:.0f}s ({last}){log_tail(self.log, 25)}"
        )

    def postmaster(self) -> int | None:
        try:
            return int((self.pgdata / "postmaster.pid").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return None

    def remove(self) -> bool:
        """Stop the copy (an immediate shutdown: it is thrown away) and delete it; True if nothing is left.

        Postgres first, then whatever else names the copy's directory: pgBackRest's asynchronous
        archive-get runs detached, outlives the Postgres it fetched WAL for, and would make its spool
        directory again after the deletion.
        """
        postmaster = self.postmaster()
        for pid in (postmaster, self.pid):
            stop_pid(pid, signal.SIGQUIT, timeout=15)
        for _ in range(3):
            for pid in pids_naming(self.root):
                stop_pid(pid, signal.SIGTERM, timeout=10)
            shutil.rmtree(self.root, ignore_errors=True)
            if not self.root.exists() and not pids_naming(self.root):
                break
        alive = pid_alive(postmaster) or pid_alive(self.pid) or bool(pids_naming(self.root))
        return not self.root.exists() and not alive
