"""A crash of the archiver at any step of a seal loses nothing and stores nothing twice (real process
crashes against the real S3 server), and a seal that fails on an unreachable bucket is finished later."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
from prometheus_client import REGISTRY

from jatra.archive.archiver import Archiver
from jatra.archive.journal import Journal
from jatra.archive.store import ArchiveStore
from jatra.infra.logfiles import timestamp_of
from jatra.settings import Settings
from jatra.stack.manager import Stack
from tests.integration.archive_crash import CRASHED
from tests.integration.archive_support import ROOT, Archive, emit, file_lines, new_archive

pytestmark = pytest.mark.integration


@pytest.fixture
def archive(stack: Stack, settings: Settings, tmp_path: Path) -> Archive:
    a = new_archive(settings, tmp_path)
    emit(a.log_dir, "payments", 30, "pay")
    return a


def crash_at(archive: Archive, step: str) -> None:
    """Run the archiver in a process of its own that dies at ``step`` of its first seal."""
    done = subprocess.run(
        [sys.executable, "-m", "tests.integration.archive_crash", step, str(archive.state_dir)],
        env=archive.env(),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == CRASHED, done.stderr[-3000:]


def cursor_offset(archive: Archive, source: str) -> int:
    path = archive.state_dir / "cursor.json"
    if not path.exists():
        return 0
    return int(json.loads(path.read_text())["positions"].get(source, {}).get("offset", 0))


def assert_archived_exactly_once(archive: Archive) -> None:
    assert archive.archived("payments") == file_lines(archive.log_dir, "payments")
    versions = archive.versions_per_key()
    assert versions and set(versions.values()) == {1}, versions  # no key written twice
    report = archive.verify()
    assert report.ok and not report.warnings, (report.problems, report.warnings)
    assert Journal(archive.state_dir / "pending").pending() == []


@pytest.mark.parametrize("step", ["planned", "segment-stored", "manifest-stored", "cursor-committed"])
def test_a_crash_at_any_step_of_a_seal_loses_nothing_and_duplicates_nothing(
    archive: Archive, step: str
) -> None:
    crash_at(archive, step)
    plans = Journal(archive.state_dir / "pending").pending()
    assert [p.sequence for p in plans] == [1]  # the write-ahead record survived the crash
    (plan,) = plans
    segment_versions = archive.store.versions_of(plan.segment_key)
    manifests = archive.manifests("payments")
    if step == "planned":
        assert segment_versions == [] and manifests == []
    elif step == "segment-stored":  # between upload and manifest
        assert len(segment_versions) == 1 and manifests == []
        assert [w.what for w in archive.verify().warnings] == [
            "uploaded, its manifest not yet written (a seal in progress)"
        ]
    else:  # between manifest and cursor, or before the plan was deleted
        assert len(segment_versions) == 1 and len(manifests) == 1
    assert cursor_offset(archive, "payments") == (plan.log.end if step == "cursor-committed" else 0)

    emit(archive.log_dir, "payments", 5, "after")  # the process kept logging while the archiver was down
    restarted = archive.archiver()
    restarted.run_once()
    restarted.flush()
    assert_archived_exactly_once(archive)
    (_, first), *_ = archive.manifests("payments")
    assert (first.segment_sha256, first.log) == (plan.segment_sha256, plan.log)  # the same segment, rebuilt


def test_two_crashes_in_a_row_at_the_same_step_still_store_once(archive: Archive) -> None:
    crash_at(archive, "segment-stored")
    crash_at(archive, "manifest-stored")  # the restart finishes the upload it finds, then dies again
    assert len(archive.manifests("payments")) == 1
    restarted = archive.archiver()
    restarted.run_once()
    restarted.flush()
    assert_archived_exactly_once(archive)


def test_a_plan_whose_log_bytes_are_gone_is_dropped_and_the_log_read_again(archive: Archive) -> None:
    crash_at(archive, "planned")  # planned, nothing uploaded
    log = archive.log_dir / "payments.log"
    kept = log.read_bytes().split(b"\n")[:3]
    log.write_bytes(b"\n".join(kept) + b"\n")  # cut short in place (copytruncate) while it was down
    restarted = archive.archiver()
    restarted.run_once()
    restarted.flush()
    assert archive.archived("payments") == [raw for raw in kept if raw]
    assert_archived_exactly_once(archive)


def test_a_seal_that_cannot_reach_the_bucket_fails_and_the_next_pass_finishes_it(archive: Archive) -> None:
    archiver = archive.archiver()
    archiver.run_once()  # bucket created, key published, first segments sealed
    sealed = len(archive.manifests("payments"))
    emit(archive.log_dir, "payments", 30, "more")
    dead = dataclasses.replace(archive.settings, s3_endpoint="127.0.0.1:9")  # nothing listens there
    archiver.store = ArchiveStore.from_settings(dead)
    with pytest.raises(Exception, match="Max retries exceeded"):
        archiver.run_once()
    assert len(archive.manifests("payments")) == sealed
    assert Journal(archive.state_dir / "pending").pending()  # the plan waits for the bucket
    archiver.store = archive.store  # the bucket is back
    archiver.run_once()
    archiver.flush()
    assert_archived_exactly_once(archive)


def test_an_archiver_refuses_a_bucket_without_object_lock(
    stack: Stack, settings: Settings, tmp_path: Path
) -> None:
    a = new_archive(settings, tmp_path)
    a.store.client.make_bucket(a.settings.archive_bucket)  # versioning or lock: neither
    emit(a.log_dir, "payments", 2, "x")
    with pytest.raises(Exception, match="exists without Object Lock"):
        Archiver(a.settings, a.store, a.key, a.log_dir, a.state_dir).run_once()


def test_the_lag_grows_while_the_bucket_cannot_be_reached_from_the_start(
    stack: Stack, settings: Settings, tmp_path: Path
) -> None:
    """An archiver that cannot reach its bucket from its first pass has sealed nothing: the lag it reports
    (when scraped) is the age of the oldest line waiting, so ArchiveLagging can fire; it stayed 0 before."""
    dead = new_archive(settings, tmp_path, s3_endpoint="127.0.0.1:9")  # nothing listens there
    emit(dead.log_dir, "payments", 5, "waiting")
    archiver = dead.archiver()
    with pytest.raises(Exception, match="Max retries exceeded"):
        archiver.run_once()
    first = timestamp_of(file_lines(dead.log_dir, "payments")[0])
    assert first is not None
    lag = REGISTRY.get_sample_value("jatra_archive_lag_seconds")
    assert lag is not None and time.time() - first - 1 <= lag <= time.time() - first + 1
