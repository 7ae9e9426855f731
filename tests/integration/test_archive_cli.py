"""`jatra audit ...` and `jatra worker archive` run as a user and supervisord run them (subprocesses, the test
stack's S3): exit codes and output, an export verified offline, and the worker surviving SIGKILLs."""

from __future__ import annotations

import dataclasses
import io
import json
import os
import signal
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import httpx
import pytest

from jatra.archive import layout, segments, signing
from jatra.settings import Settings
from jatra.stack.manager import Stack
from jatra.stack.procs import free_port
from tests.integration.archive_support import ROOT, Archive, appended, emit, file_lines, new_archive
from tests.integration.helpers import sample

pytestmark = pytest.mark.integration


def jatra(archive: Archive, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "jatra", *args],
        env=archive.env(),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.fixture
def sealed(stack: Stack, settings: Settings, tmp_path: Path) -> Archive:
    archive = new_archive(settings, tmp_path)
    emit(archive.log_dir, "payments", 40, "pay")
    emit(archive.log_dir, "api-1", 10, "api")
    archiver = archive.archiver()
    archiver.run_once()
    archiver.flush()
    return archive


def put(archive: Archive, key: str, data: bytes) -> str:
    result = archive.store.client.put_object(
        archive.settings.archive_bucket, key, io.BytesIO(data), len(data)
    )
    return str(result.version_id)


def test_verify_exits_0_on_a_clean_archive_and_1_naming_what_was_tampered_with(sealed: Archive) -> None:
    clean = jatra(sealed, "audit", "verify")
    assert clean.returncode == 0, clean.stdout + clean.stderr
    key_id = signing.key_id(sealed.key.public_key())
    n = len(sealed.manifests("payments")) + len(sealed.manifests("api-1"))
    assert (
        f"2 source(s), {n} manifest(s), {n} segment(s), 50 event(s); signed by key {key_id}" in clean.stdout
    )
    assert clean.stdout.rstrip().endswith("OK: the archive verifies")

    _, m = sealed.manifests("payments")[1]
    version = put(sealed, m.segment_key, b"not what was logged")
    tampered = jatra(sealed, "audit", "verify")
    assert tampered.returncode == 1
    assert tampered.stdout.splitlines()[0] == (
        f"FAIL payments #2 {m.segment_key}: overwritten: version(s) {version} written over the locked segment"
    )
    assert "TAMPERING OR LOSS: 1 problem(s)" in tampered.stdout
    assert jatra(sealed, "audit", "verify", "--source", "api-1").returncode == 0
    # nothing to verify is not "OK": a mistyped source, a window with nothing sealed in it
    quiet_day = ("--since", "2001-01-01T00:00:00Z", "--until", "2001-01-02T00:00:00Z")
    for args in (("--source", "api-l"), ("--source", "api-1", "--source", "paymnets"), quiet_day):
        empty = jatra(sealed, "audit", "verify", *args)
        assert empty.returncode == 1 and "NOTHING VERIFIED: no manifest of" in empty.stdout, empty.stdout


def test_a_forger_who_publishes_their_own_key_is_caught_by_the_chain_and_by_a_pinned_key(
    sealed: Archive, tmp_path: Path
) -> None:
    chained = sealed.manifests("payments")
    last_key, last = chained[-1]
    stored = sealed.store.get(last_key)
    assert stored is not None
    evil = signing.load_private(signing.generate_pem())
    evil_id = signing.key_id(evil.public_key())
    put(sealed, layout.public_key_key(evil_id), signing.public_pem(evil.public_key()))
    built = segments.build([b'{"@timestamp":"2099-01-01T00:00:00.000Z","message":"refund.approved"}'])
    seq = last.sequence + 1
    forged = appended(last, last_key, stored.data, built, "")
    forged = dataclasses.replace(forged, segment_version=put(sealed, forged.segment_key, built.data))
    until = sealed.store.retain_until()
    sealed.store.put_locked(forged.key, forged.signed(evil), until)  # even locked like the real ones

    unpinned = jatra(sealed, "audit", "verify")
    assert unpinned.returncode == 1
    real_id = signing.key_id(sealed.key.public_key())
    assert (
        f"FAIL payments #{seq} {forged.key}: signed by key {evil_id}, the manifests before it by {real_id} "
        "(a key change)"
    ) in unpinned.stdout.splitlines()
    assert "WARN keys keys/: 2 keys published: pin the right one with --public-key" in unpinned.stdout

    pem = tmp_path / "archive.pub.pem"
    pem.write_text(jatra(sealed, "audit", "key").stdout)
    pinned = jatra(sealed, "audit", "verify", "--public-key", str(pem))
    assert pinned.returncode == 1
    assert (
        f"FAIL payments #{seq} {forged.key}: signed by key {evil_id!r}, which is not the key given with "
        "--public-key"
    ) in pinned.stdout.splitlines()


def test_key_prints_the_public_key_that_is_published(sealed: Archive) -> None:
    printed = jatra(sealed, "audit", "key")
    assert printed.returncode == 0
    assert printed.stdout.encode() == signing.public_pem(sealed.key.public_key())
    assert f"# key id {signing.key_id(sealed.key.public_key())}" in printed.stderr
    published = jatra(sealed, "audit", "key", "--published")
    assert published.returncode == 0
    assert printed.stdout in published.stdout
    assert f"# keys/{signing.key_id(sealed.key.public_key())}.pem" in published.stdout


def test_search_prints_the_events_of_a_booking_or_a_trace(sealed: Archive) -> None:
    by_booking = jatra(sealed, "audit", "search", "--booking-id", "pay-7")
    assert by_booking.returncode == 0, by_booking.stderr
    (event,) = [json.loads(line) for line in by_booking.stdout.splitlines()]
    assert (event["booking_id"], event["message"]) == ("pay-7", "booking.created")
    assert "1 event(s) in" in by_booking.stderr
    by_trace = jatra(sealed, "audit", "search", "--trace-id", event["trace"]["id"])
    assert [json.loads(line)["booking_id"] for line in by_trace.stdout.splitlines()] == ["pay-7"]
    future = jatra(sealed, "audit", "search", "--since", "2099-01-01")
    assert future.returncode == 0 and future.stdout == "" and "0 event(s) in 0 segment(s)" in future.stderr
    nothing = jatra(sealed, "audit", "search")
    assert nothing.returncode == 2 and "give at least one of" in nothing.stderr
    bad = jatra(sealed, "audit", "search", "--since", "yesterday")
    assert bad.returncode == 2 and "is not an ISO 8601 date or time" in bad.stderr


def test_search_exits_1_naming_a_segment_no_trusted_signature_proves(sealed: Archive, tmp_path: Path) -> None:
    k2, _ = sealed.manifests("payments")[1]
    stored = sealed.store.get(k2)
    assert stored is not None
    doc = json.loads(stored.data)
    doc["events"]["count"] -= 1  # an edited manifest: its signature no longer verifies
    put(sealed, k2, json.dumps(doc).encode())
    pem = tmp_path / "key.pem"
    pem.write_bytes(signing.public_pem(sealed.key.public_key()))
    for pinned in ((), ("--public-key", str(pem))):
        found = jatra(sealed, "audit", "search", "--since", "2026-01-01", *pinned)
        assert found.returncode == 1, found.stderr
        assert f"WARN {k2}: its signature does not verify" in found.stderr
        assert "INCOMPLETE: 1 segment(s) left out" in found.stderr
        assert found.stdout  # the other segments' events are printed


def test_an_export_verifies_offline_and_tampering_with_it_is_caught(sealed: Archive, tmp_path: Path) -> None:
    lines = sealed.archived("payments")
    since, until = segments.event_time(lines[5]), segments.event_time(lines[-5])
    assert since is not None and until is not None
    out = tmp_path / "audit.tar"
    done = jatra(
        sealed,
        "audit",
        "export",
        "--since",
        since.isoformat(),
        "--until",
        until.isoformat(),
        "--out",
        str(out),
    )
    assert done.returncode == 0, done.stderr
    with tarfile.open(out) as tar:
        files = {m.name: tar.extractfile(m).read() for m in tar.getmembers()}  # type: ignore[union-attr]
    events = files["events.ndjson"].split(b"\n")[:-1]
    window = [raw for raw in lines + sealed.archived("api-1") if since <= segments.event_time(raw) <= until]  # type: ignore[operator]
    assert sorted(events) == sorted(window) and len(events) >= len(lines) - 10
    assert f"wrote {out}: {len(events)} event(s)" in done.stdout
    assert any(k.startswith("manifests/payments/") for k in files) and "README.txt" in files

    pem = tmp_path / "archive.pub.pem"
    pem.write_bytes(signing.public_pem(sealed.key.public_key()))
    offline = jatra(sealed, "audit", "verify", "--export", str(out), "--public-key", str(pem))
    assert offline.returncode == 0, offline.stdout
    assert "OK: the archive verifies" in offline.stdout

    segment = next(k for k in files if k.startswith("segments/payments/"))
    altered = tmp_path / "altered.tar"
    with tarfile.open(altered, "w") as tar:
        for name, original in files.items():
            data = segments.build(segments.lines_of(original)[:-1]).data if name == segment else original
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    caught = jatra(sealed, "audit", "verify", "--export", str(altered), "--public-key", str(pem))
    assert caught.returncode == 1
    assert any(
        line.startswith("FAIL payments #") and f"{segment}: content changed" in line
        for line in caught.stdout.splitlines()
    )


def test_an_export_of_a_middle_segment_carries_its_bounds_and_a_short_one_is_caught(
    sealed: Archive, tmp_path: Path
) -> None:
    """Exported from the middle of a chain, the export holds the manifests on either side of its segments
    (no segments of theirs), and verifies with no warning; events.ndjson short of an event of the window,
    or the end bound taken out with the last segment, is named."""
    chain = sealed.manifests("payments")
    assert len(chain) >= 3, len(chain)
    (before, _), (middle_key, middle), (after, _) = chain[0], chain[1], chain[2]
    assert middle.first is not None and middle.last is not None
    out = tmp_path / "middle.tar"
    made = jatra(
        sealed, "audit", "export", "--since", middle.first.isoformat(), "--until", middle.last.isoformat(),
        "--source", "payments", "--out", str(out),
    )  # fmt: skip
    assert made.returncode == 0, made.stderr
    with tarfile.open(out) as tar:
        files = {m.name: tar.extractfile(m).read() for m in tar.getmembers()}  # type: ignore[union-attr]
    assert sorted(k for k in files if k.startswith("manifests/")) == sorted([before, middle_key, after])
    assert [k for k in files if k.startswith("segments/")] == [middle.segment_key]
    assert json.loads(files["export.json"])["bounds"] == {"payments": [1, 3]}
    pem = tmp_path / "archive.pub.pem"
    pem.write_bytes(signing.public_pem(sealed.key.public_key()))

    def verified(changed: dict[str, bytes | None], *args: str) -> subprocess.CompletedProcess[str]:
        path = tmp_path / "changed.tar"
        with tarfile.open(path, "w") as tar:
            for name, data in {**files, **changed}.items():
                if data is not None:
                    info = tarfile.TarInfo(name)
                    info.size = len(data)
                    tar.addfile(info, io.BytesIO(data))
        return jatra(sealed, "audit", "verify", "--export", str(path), "--public-key", str(pem), *args)

    clean = verified({})
    assert clean.returncode == 0, clean.stdout
    assert "WARN" not in clean.stdout and "OK: the archive verifies" in clean.stdout
    events = files["events.ndjson"].split(b"\n")[:-1]
    short = verified({"events.ndjson": b"".join(e + b"\n" for e in events[1:])})
    assert short.returncode == 1
    assert "FAIL events.ndjson: 1 event(s) of the window in the segments are not in it" in short.stdout
    unbounded = verified({after: None})
    assert unbounded.returncode == 0  # it may have been the last one sealed: a warning, not a failure
    assert "no manifest after this one in the export: nothing proves" in unbounded.stdout
    # one end asked for, the other the export's own
    one_end = verified({}, "--since", middle.first.isoformat())
    assert one_end.returncode == 0 and "WARN" not in one_end.stdout, one_end.stdout
    # an export written before windows and bounds were: what can be checked is, the rest is said
    about = json.loads(files["export.json"])
    del about["window"], about["bounds"]
    older = verified({"export.json": json.dumps(about).encode(), before: None, after: None})
    assert older.returncode == 0, older.stdout  # checked against its millisecond ends
    assert "events.ndjson checked against the window since" in older.stdout
    assert "the chain before this manifest is not in the export" in older.stdout  # no bounds then


def test_verify_without_a_bucket_exits_2(stack: Stack, settings: Settings, tmp_path: Path) -> None:
    archive = new_archive(settings, tmp_path)
    done = jatra(archive, "audit", "verify")
    assert done.returncode == 2
    assert f"no archive: bucket {archive.settings.archive_bucket} does not exist" in done.stderr


@pytest.mark.slow
def test_the_worker_archives_every_line_once_across_sigkills(
    stack: Stack, settings: Settings, tmp_path: Path
) -> None:
    archive = new_archive(settings, tmp_path, archive_segment_bytes=2048, archive_segment_age_s=0.5)
    port = free_port()
    env = {**archive.env(), "JATRA_TRACE_DIR": str(tmp_path / "traces")}
    worker_log = tmp_path / "worker.log"  # outside the log dir: the test waits for the archive to go quiet

    def start() -> subprocess.Popen[bytes]:
        return archive_worker(env, port, worker_log)

    def metrics() -> str:
        return httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=2).text

    def wait_until(check: object, within: float, what: str) -> None:
        deadline = time.monotonic() + within
        while not check():  # type: ignore[operator]
            assert time.monotonic() < deadline, f"not within {within}s: {what}"
            time.sleep(0.2)

    def up() -> bool:
        try:
            return httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    worker = start()
    try:
        for burst in range(3):
            wait_until(up, 30, "the archive worker answers /health")
            emit(archive.log_dir, "payments", 25, f"p{burst}")
            emit(archive.log_dir, "api-1", 8, f"a{burst}")
            time.sleep(0.3 * burst)  # kill it at a different moment of its work each time
            os.kill(worker.pid, signal.SIGKILL)
            worker.wait(10)
            worker = start()
        wait_until(up, 30, "the archive worker answers /health")
        emit(archive.log_dir, "payments", 10, "last")  # some for the last worker to seal (its metrics)

        def all_archived() -> bool:
            return all(archive.archived(s) == file_lines(archive.log_dir, s) for s in ("payments", "api-1"))

        wait_until(all_archived, 60, "every line archived")
        text = metrics()
        assert sample(text, "jatra_archive_segments_total", outcome="sealed") >= 1
        assert sample(text, "jatra_archive_events_total") >= 1
        assert sample(text, "jatra_archive_last_seal_timestamp_seconds") > time.time() - 120
        assert "jatra_archive_lag_seconds" in text and "jatra_archive_bytes_total" in text
    finally:
        worker.send_signal(signal.SIGTERM)
        worker.wait(20)
    assert set(archive.versions_per_key().values()) == {1}
    verified = jatra(archive, "audit", "verify")
    assert verified.returncode == 0, verified.stdout
    assert "archive.sealed" in worker_log.read_text()


def test_a_stopped_worker_seals_what_it_holds_before_it_exits(
    stack: Stack, settings: Settings, tmp_path: Path
) -> None:
    """In a pod the log directory and the archiver's state go with the pod: a worker asked to stop (SIGTERM)
    reads to the end and seals every open segment, however young and small, before it exits."""
    archive = new_archive(settings, tmp_path, archive_segment_bytes=1 << 20)  # sealed at 1 MiB or an hour
    port = free_port()
    env = {**archive.env(), "JATRA_TRACE_DIR": str(tmp_path / "traces")}
    worker_log = tmp_path / "worker.log"
    emit(archive.log_dir, "payments", 12, "before")
    worker = archive_worker(env, port, worker_log)
    try:
        deadline = time.monotonic() + 30
        while "worker.started" not in worker_log.read_text():
            assert time.monotonic() < deadline and worker.poll() is None, worker_log.read_text()
            time.sleep(0.2)
        emit(archive.log_dir, "payments", 5, "after")  # written after its first pass, most likely
    finally:
        worker.send_signal(signal.SIGTERM)
        worker.wait(30)
    assert archive.archived("payments") == file_lines(archive.log_dir, "payments")
    assert len(file_lines(archive.log_dir, "payments")) == 17
    verified = jatra(archive, "audit", "verify")
    assert verified.returncode == 0, verified.stdout
    assert "worker.final_pass" in worker_log.read_text()


def archive_worker(env: dict[str, str], port: int, log: Path) -> subprocess.Popen[bytes]:
    """`jatra worker archive` as supervisord runs it, its output appended to ``log``."""
    with log.open("ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "jatra", "worker", "archive", "--port", str(port)],
            env=env, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
