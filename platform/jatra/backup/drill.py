"""`jatra restore --drill`: restore the latest backup into a scratch cluster, check it, report the RTO.

1. target: the drill counts the live tables, marks a named restore point in the WAL, closes the WAL
   segment and counts again, then waits until the repository holds that segment: the restore point is the
   end of the archive as of the drill's start;
2. restore: pgBackRest restores the newest backup set into STATE_DIR/data/drill/<id> and sets recovery to
   replay the archived WAL up to the restore point, then promote;
3. recovery: a scratch Postgres on a free loopback port replays the WAL, as the user Postgres runs as;
4. verify: row counts, invariants and schema version of the copy against the live database
   (:mod:`jatra.backup.verify`).

The RTO is the time from the drill's start to a verified, queryable copy. The copy is stopped and deleted
afterwards, pass or fail. The report says what was checked and what failed.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import os
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import structlog
from opentelemetry import trace
from opentelemetry.trace import Status, StatusCode
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from jatra.backup import repository
from jatra.backup.errors import DrillFailed
from jatra.backup.listing import location
from jatra.backup.scratch import ScratchCluster
from jatra.backup.verify import MAIN_TABLES, Snapshot, checks, compare, count_rows, snapshot
from jatra.infra.db import create_engine
from jatra.settings import Settings
from jatra.stack import pgbackrest

log = structlog.get_logger()
tracer = trace.get_tracer("jatra.backup")


@dataclass(frozen=True, slots=True)
class Target:
    """The drill's recovery target on the live database, and what the live database held around it."""

    name: str
    lsn: str
    wal: str
    at: dt.datetime
    before: Snapshot
    after: dict[str, int]
    database_bytes: int
    #: the moment both copies' time-bound invariants are judged at
    judged_at: dt.datetime

    def as_json(self) -> dict[str, Any]:
        return {
            "restore_point": self.name,
            "lsn": self.lsn,
            "wal_segment": self.wal,
            "time": self.at.isoformat(timespec="milliseconds"),
        }


async def mark_target(settings: Settings, tables: Sequence[str]) -> Target:
    engine = create_engine(settings, admin=True, pool_size=1)
    name = f"jatra-drill-{dt.datetime.now(dt.UTC):%Y%m%dT%H%M%S}-{os.getpid()}"
    try:
        async with engine.connect() as raw:
            conn = await raw.execution_options(isolation_level="AUTOCOMMIT")
            # invariants first: counts, restore point and counts again follow each other closely
            judged_at = (await conn.execute(text("SELECT now()"))).scalar_one()
            invariants, schema = await checks(conn, judged_at)
            size = int((await conn.execute(text("SELECT pg_database_size(current_database())"))).scalar_one())
            before = Snapshot(await count_rows(conn, tables), invariants, schema)
            lsn, wal, at = (
                await conn.execute(
                    text(
                        "SELECT lsn::text, pg_walfile_name(lsn), now() FROM pg_create_restore_point(:n) lsn"
                    ),
                    {"n": name},
                )
            ).one()
            await conn.execute(text("SELECT pg_switch_wal()"))
            after = await count_rows(conn, tables)
    finally:
        await engine.dispose()
    return Target(name, lsn, wal, at, before, after, size, judged_at)


async def wait_archived(settings: Settings, config: Path, wal: str, limit_s: float) -> None:
    """Wait until the repository holds WAL segment ``wal`` (the one with the restore point)."""
    deadline = time.monotonic() + limit_s
    newest: str | None = None
    while time.monotonic() < deadline:
        repo = await asyncio.to_thread(repository.read, settings, config)
        newest = repo.wal_max
        if newest is not None and newest >= wal:
            return
        await asyncio.sleep(0.25)
    raise DrillFailed(
        f"WAL segment {wal} did not reach the repository within {limit_s:.0f}s (newest there: {newest}); "
        "is WAL archiving on? (`jatra up` turns it on; see the Postgres log for archive-push errors)"
    )


async def inspect(url: str, tables: Sequence[str], at: dt.datetime) -> Snapshot:
    engine = create_async_engine(url, poolclass=NullPool)
    try:
        async with engine.connect() as raw:
            conn = await raw.execution_options(isolation_level="AUTOCOMMIT")
            return await snapshot(conn, tables, at)
    finally:
        await engine.dispose()


def latest_backup(repo: repository.Repository, where: str) -> repository.BackupSet:
    latest = repo.latest()
    if latest is None:
        raise DrillFailed(f"no backup to restore in {where} (status: {repo.status})")
    return latest


class _Drill:
    """One run: its phases, timed and traced, and the report they fill in."""

    def __init__(self, settings: Settings, tables: Sequence[str]) -> None:
        self.settings = settings
        self.tables = tables
        self.t0 = time.monotonic()
        self.deadline = self.t0 + settings.backup_drill_timeout_s
        self.phases: dict[str, float] = {}
        self.report: dict[str, Any] = {
            "ok": False,
            "started_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "repository": location(settings),
            "stanza": pgbackrest.STANZA,
            "rto_s": None,
            "phases_s": self.phases,
        }
        self.scratch: ScratchCluster | None = None

    def left(self) -> float:
        return self.deadline - time.monotonic()

    @contextlib.contextmanager
    def phase(self, name: str) -> Iterator[None]:
        t0 = time.monotonic()
        with tracer.start_as_current_span(f"backup.drill.{name}"):
            try:
                yield
            finally:
                self.phases[name] = round(time.monotonic() - t0, 2)

    async def run(self) -> None:
        report = self.report
        self.scratch = scratch = ScratchCluster(self.settings)
        # the drill's own config: it must never rewrite the one the live archive command reads
        config = scratch.write_config()
        with self.phase("choose"):
            repo = await asyncio.to_thread(repository.read, self.settings, config)
        latest = latest_backup(repo, report["repository"])
        report["backup"] = latest.as_json()
        with self.phase("target"):
            target = await mark_target(self.settings, self.tables)
            report["target"] = target.as_json()
            report["database_bytes"] = target.database_bytes
            await wait_archived(self.settings, config, target.wal, self.left())
        with self.phase("restore"):
            await asyncio.to_thread(scratch.restore, latest.label, target.name)
        with self.phase("recovery"):
            scratch.start()
            await scratch.wait_promoted(self.left())
        with self.phase("verify"):
            restored = await inspect(scratch.url(), self.tables, target.judged_at)
            checked = compare(target.before, target.after, restored)
        report.update(checked)
        report["ok"] = not checked["failures"]
        if report["ok"]:
            report["rto_s"] = round(time.monotonic() - self.t0, 2)
        else:
            report["error"] = "the restored copy does not match: " + ", ".join(checked["failures"])

    async def clean_up(self) -> None:
        if self.scratch is None:
            return
        with self.phase("cleanup"):
            self.report["cleaned_up"] = await asyncio.to_thread(self.scratch.remove)
        if not self.report["cleaned_up"]:
            self.report["ok"] = False
            self.report.setdefault("error", f"the scratch copy in {self.scratch.root} could not be removed")


async def drill(settings: Settings, tables: Sequence[str] = MAIN_TABLES) -> dict[str, Any]:
    """Run the drill; its report (``ok`` says whether everything passed). It never leaves a copy behind."""
    run = _Drill(settings, tables)
    report = run.report
    with tracer.start_as_current_span("backup.drill") as span:
        log.info("backup.drill.started", repository=report["repository"])
        try:
            await run.run()
        except Exception as exc:  # the drill's job is to report any failure, and then to clean up
            report["error"] = f"{type(exc).__name__}: {exc}"
        finally:
            await run.clean_up()
        report["drill_s"] = round(time.monotonic() - run.t0, 2)
        span.set_attribute("jatra.backup.drill.ok", report["ok"])
        if report["ok"]:
            span.set_attribute("jatra.backup.drill.rto_s", report["rto_s"])
            log.info(
                "backup.drill.passed",
                rto_s=report["rto_s"],
                backup=report["backup"]["label"],
                phases_s=run.phases,
            )
        else:
            span.set_status(Status(StatusCode.ERROR, report["error"]))
            log.error("backup.drill.failed", error=report["error"], phases_s=run.phases)
    return report
