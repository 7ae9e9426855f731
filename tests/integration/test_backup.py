"""Backups against the real servers: pgBackRest into the local S3 server (SeaweedFS, over HTTPS), Postgres
archiving its WAL there, and restores into a scratch Postgres. Nothing is simulated."""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import io
import json
import os
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from prometheus_client import REGISTRY
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, create_async_engine
from sqlalchemy.pool import NullPool

from jatra.backup import repository, schedule, take
from jatra.backup.drill import drill, wait_archived
from jatra.backup.errors import BackupBusy
from jatra.backup.schedule import run_schedule
from jatra.backup.scratch import ScratchCluster
from jatra.backup.take import take_backup
from jatra.backup.verify import MAIN_TABLES
from jatra.infra.db import create_engine
from jatra.infra.resources import Resources
from jatra.infra.s3 import s3_client
from jatra.settings import Settings
from jatra.stack import pgbackrest
from jatra.stack.base import StackContext
from jatra.stack.manager import Stack
from jatra.stack.ports import Ports
from jatra.stack.procs import chown_tree, pid_alive, pids_naming, spawn
from tests.fixtures.accounts import Passenger
from tests.fixtures.logs import Logged
from tests.integration.payflow import book

pytestmark = [pytest.mark.integration, pytest.mark.slow]
PROBE = "backup_probe"


def jatra(*args: str) -> subprocess.CompletedProcess[str]:
    """The `jatra` command as a user runs it, with the test stack's environment."""
    return subprocess.run(
        [sys.executable, "-m", "jatra", *args], capture_output=True, text=True, check=False, timeout=300
    )


@pytest.fixture(scope="module")
def backed_up(stack: Stack, settings: Settings) -> repository.BackupSet:
    """The stanza exists (WAL archiving on) and the repository holds a full backup."""
    return take_backup(settings, "full")


@pytest.fixture
async def live(stack: Stack, settings: Settings) -> AsyncIterator[AsyncConnection]:
    """An autocommit connection to the live database, with a fresh probe table dropped afterwards."""
    engine = create_engine(settings, admin=True, pool_size=1)
    async with engine.connect() as raw:
        conn = await raw.execution_options(isolation_level="AUTOCOMMIT")
        await conn.execute(text(f"DROP TABLE IF EXISTS {PROBE}"))
        await conn.execute(text(f"CREATE TABLE {PROBE} (id serial PRIMARY KEY, phase text NOT NULL)"))
        yield conn
        await conn.execute(text(f"DROP TABLE IF EXISTS {PROBE}"))
    await engine.dispose()


async def insert(conn: AsyncConnection, phase: str, n: int) -> None:
    await conn.execute(
        text(f"INSERT INTO {PROBE} (phase) SELECT :p FROM generate_series(1, :n)"), {"p": phase, "n": n}
    )


def drill_dirs(settings: Settings) -> list[Path]:
    root = repository.stack_context(settings).data("drill")
    return sorted(root.iterdir()) if root.exists() else []


def scratch_postgres_running(settings: Settings) -> list[int]:
    """PIDs of any process (Postgres, pgBackRest's async workers) naming a path under STATE_DIR/data/drill."""
    return pids_naming(repository.stack_context(settings).data("drill"))


def test_removing_a_scratch_copy_stops_what_outlived_its_postgres(tmp_path: Path) -> None:
    """pgBackRest's asynchronous archive-get runs detached and can write its spool after the scratch
    Postgres is gone: removal stops whatever names the copy's directory, so nothing comes back."""
    scratch = ScratchCluster(Settings(state_dir=tmp_path))
    scratch.root.mkdir(parents=True)
    late_writer = f"sleep 0.5; mkdir -p {scratch.root}/spool; sleep 60"
    pid = spawn(["/bin/sh", "-c", late_writer, str(scratch.files.config)], tmp_path / "worker.log")
    assert scratch.remove()
    time.sleep(1.0)  # past the moment the worker would have made its spool again
    assert not scratch.root.exists() and not pid_alive(pid)


def test_the_archive_command_pushes_only_once_the_stanza_exists(tmp_path: Path) -> None:
    """Before the first backup, WAL is of no use to a restore: the command succeeds without pushing, so a
    fresh Postgres never keeps its WAL. Once the switch is on, a failing push fails (Postgres retries)."""
    ctx = StackContext(tmp_path, Ports(7900))
    command = pgbackrest.archive_command(ctx).replace("%p", "pg_wal/000000010000000000000001")
    off = subprocess.run(["/bin/sh", "-c", command], capture_output=True, text=True, check=False, timeout=30)
    assert off.returncode == 0 and off.stderr == ""
    pgbackrest.archive_switch(ctx).parent.mkdir(parents=True)
    pgbackrest.archive_switch(ctx).write_text("on\n")
    on = subprocess.run(["/bin/sh", "-c", command], capture_output=True, text=True, check=False, timeout=60)
    assert on.returncode != 0  # no config here: pgBackRest itself ran, and failed
    assert "pgbackrest.conf" in on.stdout + on.stderr


def test_a_backup_is_taken_and_listed(stack: Stack, settings: Settings) -> None:
    taken = jatra("backup", "--type", "full")
    assert taken.returncode == 0, taken.stderr
    label = taken.stdout.split()[1]
    assert label.endswith("F"), taken.stdout
    listed = jatra("backup", "list", "--json")
    assert listed.returncode == 0, listed.stderr
    repo = json.loads(listed.stdout)
    assert repo["repository"] == f"s3://{settings.backup_bucket}{settings.backup_repo_path}"
    assert repo["status"] == "ok"
    assert f"keeps {settings.backup_retention_full} full backups" in repo["retention"]
    mine = next(b for b in repo["backups"] if b["label"] == label)
    assert mine["type"] == "full" and mine["database_bytes"] > 0 and mine["repository_bytes"] > 0
    assert repo["wal"]["newest"] >= mine["wal"][1]  # the WAL the backup needs is archived
    table = jatra("backup", "list")
    assert table.returncode == 0 and label in table.stdout and "retention" in table.stdout
    # it is in the bucket, under the repository path
    prefix = f"{settings.backup_repo_path.strip('/')}/backup/{pgbackrest.STANZA}/{label}/"
    assert any(s3_client(settings).list_objects(settings.backup_bucket, prefix=prefix, recursive=True))


async def test_rows_written_after_the_backup_are_restored_by_wal_replay_up_to_the_target(
    backed_up: repository.BackupSet, settings: Settings, live: AsyncConnection
) -> None:
    """Point-in-time recovery: a backup, then rows only the archived WAL has, then a target, then rows the
    restore must not have."""
    await insert(live, "in the backup", 100)
    made = take_backup(settings, "incr")
    await insert(live, "after the backup", 40)
    target = f"test-{uuid.uuid4().hex[:8]}"
    wal = (
        await live.execute(text("SELECT pg_walfile_name(pg_create_restore_point(:n))"), {"n": target})
    ).scalar_one()
    await insert(live, "after the target", 25)
    await live.execute(text("SELECT pg_switch_wal()"))
    scratch = ScratchCluster(settings)
    try:
        config = scratch.write_config()
        await wait_archived(settings, config, wal, 60)
        scratch.restore(made.label, target)
        scratch.start()
        await scratch.wait_promoted(120)
        engine = create_async_engine(scratch.url(), poolclass=NullPool)
        async with engine.connect() as conn:
            found = (await conn.execute(text(f"SELECT phase, count(*) FROM {PROBE} GROUP BY 1"))).all()
        rows = {str(phase): int(n) for phase, n in found}
        await engine.dispose()
    finally:
        assert scratch.remove()
    assert rows == {"in the backup": 100, "after the backup": 40}


async def test_the_restore_drill_checks_counts_and_invariants_reports_an_rto_and_cleans_up(
    backed_up: repository.BackupSet,
    settings: Settings,
    client: AsyncTestClient[Litestar],
    passenger: Passenger,
    tmp_path: Path,
) -> None:
    await book(client, passenger)  # a hold, a booking and its outbox row, not yet paid
    ran = jatra("restore", "--drill", "--out", str(tmp_path / "drill.json"))
    assert ran.returncode == 0, ran.stdout[-3000:] + ran.stderr[-2000:]
    report: dict[str, Any] = json.loads(ran.stdout)
    assert report == json.loads((tmp_path / "drill.json").read_text())
    assert report["ok"] is True and report["failures"] == []
    assert 0 < report["rto_s"] <= report["drill_s"]
    assert set(report["phases_s"]) == {"choose", "target", "restore", "recovery", "verify", "cleanup"}
    assert set(report["counts"]) == set(MAIN_TABLES)
    for table, c in report["counts"].items():
        low, high = sorted((c["live_before"], c["live_after"]))
        assert low <= c["restored"] <= high and c["ok"], (table, c)
    assert report["counts"]["bookings"]["restored"] >= 1 and report["counts"]["seats"]["restored"] > 0
    assert set(report["invariants"]) == {
        "seats_sold_twice", "payments_captured_twice", "accepted_not_final", "holds_leaked",
        "captured_without_confirmed",
    }  # fmt: skip
    assert report["invariants"]["seats_sold_twice"] == {"live": 0, "restored": 0, "ok": True}
    # every invariant holds in the copy (the booking just made may be paid or not by the restore point:
    # the payment worker runs, so its state there is not ours to choose)
    assert all(check["ok"] for check in report["invariants"].values()), report["invariants"]
    assert report["schema"]["ok"] and report["schema"]["restored"] is not None
    assert report["cleaned_up"] is True
    assert drill_dirs(settings) == [] and scratch_postgres_running(settings) == []


async def test_a_drill_against_a_corrupted_backup_fails_loudly(stack: Stack, settings: Settings) -> None:
    made = take_backup(settings, "full")
    client = s3_client(settings)
    prefix = f"{settings.backup_repo_path.strip('/')}/backup/{pgbackrest.STANZA}/{made.label}/"
    objects = list(client.list_objects(settings.backup_bucket, prefix=prefix, recursive=True))
    victim = max((o for o in objects if "/bundle/" in (o.object_name or "")), key=lambda o: o.size or 0)
    assert victim.object_name is not None
    response = client.get_object(settings.backup_bucket, victim.object_name)
    original = response.read()
    response.close()
    response.release_conn()
    garbage = bytes(b ^ 0x5A for b in original)  # same size, every byte wrong
    client.put_object(settings.backup_bucket, victim.object_name, io.BytesIO(garbage), len(garbage))
    try:
        ran = jatra("restore", "--drill")
    finally:
        client.put_object(settings.backup_bucket, victim.object_name, io.BytesIO(original), len(original))
    assert ran.returncode == 1, ran.stdout[-3000:]
    report = json.loads(ran.stdout)
    assert report["ok"] is False and report["rto_s"] is None
    assert report["backup"]["label"] == made.label
    assert "pgbackrest restore failed" in report["error"]
    assert "restore drill FAILED" in ran.stderr
    assert report["cleaned_up"] is True
    assert drill_dirs(settings) == [] and scratch_postgres_running(settings) == []


async def test_a_drill_with_no_backup_in_the_repository_fails_and_leaves_the_live_config(
    stack: Stack, settings: Settings
) -> None:
    live_config = pgbackrest.stack_files(repository.stack_context(settings)).config
    before = live_config.read_text() if live_config.exists() else None
    empty = dataclasses.replace(settings, backup_repo_path=f"/missing-{uuid.uuid4().hex[:8]}")
    report = await drill(empty)
    assert report["ok"] is False
    assert "no backup to restore" in report["error"] and empty.backup_repo_path in report["error"]
    assert report["cleaned_up"] is True and drill_dirs(settings) == []
    # the drill wrote a config of its own: the one the live archive command reads is untouched
    assert (live_config.read_text() if live_config.exists() else None) == before


def test_retention_expires_old_full_backups(stack: Stack, settings: Settings) -> None:
    keep_two = dataclasses.replace(settings, backup_retention_full=2)
    try:
        labels = [take_backup(keep_two, "full").label for _ in range(3)]
        repo = repository.read(keep_two)
    finally:
        repository.live_config(settings)  # back to the configured retention
    fulls = [b.label for b in repo.backups if b.type == "full"]
    assert fulls == labels[1:], f"kept {fulls}, took {labels}"
    assert all(b.label.startswith(labels[1]) or b.label.startswith(labels[2]) for b in repo.backups)
    # the WAL from the oldest backup kept on is kept; what only the expired backup needed is gone
    assert repo.wal_min == repo.backups[0].wal_start


async def test_the_worker_exports_the_age_of_the_newest_backups(
    backed_up: repository.BackupSet, settings: Settings
) -> None:
    quiet = dataclasses.replace(settings, backup_incr_interval_s=3600, backup_full_interval_s=86400)
    taken = await run_schedule(Resources(settings=quiet, name="backup"))
    assert taken == 0  # a full backup of today exists: nothing is due
    repo = repository.read(settings)
    newest_full = repo.latest("full")
    assert newest_full is not None
    gauge = "jatra_backup_last_success_timestamp_seconds"
    assert REGISTRY.get_sample_value(gauge, {"kind": "full"}) == newest_full.stopped
    newest_incr = repo.latest("incremental")
    if newest_incr is not None:
        assert REGISTRY.get_sample_value(gauge, {"kind": "incremental"}) == newest_incr.stopped
    wal = REGISTRY.get_sample_value(gauge, {"kind": "wal"})
    assert wal is not None and newest_full.stopped - 5 <= wal <= time.time() + 1
    duration = REGISTRY.get_sample_value("jatra_backup_duration_seconds", {"kind": "full"})
    assert duration == newest_full.duration_s


@contextlib.contextmanager
def backup_lock_held(settings: Settings) -> Iterator[None]:
    """Hold the stanza's backup lock as a running pgBackRest backup does: an exclusive flock on its file.
    pgBackRest deletes the file when it lets go, so a lock is kept only on the file that is still there
    (one taken on a file deleted meanwhile would lock nothing; the stack's backup worker may be running)."""
    lock_dir = pgbackrest.stack_files(repository.stack_context(settings)).lock
    path = lock_dir / f"{pgbackrest.STANZA}-backup.lock"
    deadline = time.monotonic() + 600
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o640)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:  # a backup is running: wait for it
            os.close(fd)
            assert time.monotonic() < deadline, "the backup lock stayed busy for 10 minutes"
            time.sleep(0.2)
            continue
        if path.exists() and os.fstat(fd).st_ino == path.stat().st_ino:
            break
        os.close(fd)  # deleted (or replaced) between the open and the lock: again
    try:
        chown_tree(path, pgbackrest.PG_USER)
        yield
    finally:
        os.close(fd)  # closing the file releases the lock


def test_a_backup_waits_for_the_one_running_then_is_taken(
    backed_up: repository.BackupSet, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """pgBackRest runs one backup at a time; a second (an operator's while the worker's runs) waits for it."""
    logged = Logged()
    monkeypatch.setattr(take, "log", logged)
    result: list[repository.BackupSet] = []
    with backup_lock_held(settings):
        waiting = threading.Thread(target=lambda: result.append(take_backup(settings, "incr", wait_s=120)))
        waiting.start()
        deadline = time.monotonic() + 30
        # two tries, both finding the lock held, before it is let go
        while [e["event"] for e in logged.events].count("backup.waiting") < 2 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert waiting.is_alive() and not result
    waiting.join(120)
    assert not waiting.is_alive() and result, logged.events
    assert result[0].label != backed_up.label and result[0].type == "incr"
    events = [e["event"] for e in logged.events]
    assert events.count("backup.waiting") >= 2 and "backup.completed" in events
    assert "backup.failed" not in events


async def test_the_worker_defers_a_backup_while_another_runs(
    backed_up: repository.BackupSet, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The worker waits briefly (the backup running may be the one due), logs, and decides again next pass.
    Without waiting, take_backup says BackupBusy at once and logs no failure."""
    logged = Logged()
    monkeypatch.setattr(take, "log", logged)
    monkeypatch.setattr(schedule, "log", logged)
    monkeypatch.setattr(schedule, "BUSY_WAIT_S", 2.0)
    due_now = dataclasses.replace(settings, backup_incr_interval_s=0)
    with backup_lock_held(settings):
        with pytest.raises(BackupBusy):
            take_backup(settings, "incr", wait_s=0)
        assert await run_schedule(Resources(settings=due_now, name="backup")) == 0
    events = [e["event"] for e in logged.events]
    assert "backup.deferred" in events and "backup.failed" not in events, events
    assert (
        "backup.completed" not in events and events.count("backup.busy") == 2
    )  # the direct call's, the worker's
    assert "backup.waiting" in events  # the worker's: it waited before it deferred
